# Every code of RILL_ERRNO_MAP maps to its Ruby exception (one mapping for
# status codes and for failed futures).
require_relative "helper"

class TestErrors < Minitest::Test
  SPECIAL = {
    "ECANCELLED" => Rill::CancelledError,
    "ETIMEDOUT" => Rill::TimeoutError,
    "EINVAL" => ArgumentError,
    "ETYPE" => TypeError,
    "ENOMEM" => NoMemoryError,
  }.freeze

  def codes
    Rill::Ext.constants.grep(/\AE[A-Z0-9]+\z/).map { |c| [c.to_s, Rill::Ext.const_get(c)] }
  end

  def test_every_code_maps_to_its_exception
    assert_operator codes.size, :>=, 12
    codes.each do |name, code|
      e = Rill::Ext.error_for(code)
      klass = SPECIAL.fetch(name, Rill::Error)
      assert_instance_of klass, e, name
      assert_equal code, e.code, name if e.respond_to?(:code) && klass != Rill::CancelledError
      assert_equal "RILL_#{name}: #{Rill::Ext.strerror(code)}", e.message, name if klass == Rill::Error
    end
  end

  def test_failed_future_raises_the_same_exception
    codes.each do |name, code|
      host = Rill::Ext::Loop.new
      f = Rill::Ext::Future.new(host)
      f.fail(code, "why")
      e = assert_raises(SPECIAL.fetch(name, Rill::Error), name) { Rill.wrap_future(f).value }
      assert_match(/why/, e.message, name) unless code == Rill::Ext::ECANCELLED
      host.close
    end
  end

  def test_application_code_is_a_rill_error
    e = Rill::Ext.error_for(-1000, "mine")
    assert_instance_of Rill::Error, e
    assert_equal(-1000, e.code)
    assert_equal "application error: mine", e.message
  end

  def test_message_of_another_code_is_not_attached
    host = Rill::Ext::Loop.new
    assert_raises(ArgumentError) { Rill::Ext::Future.new(host).fail(1, "the EINVAL text") }
    e = Rill::Ext.error_for(Rill::Ext::ESTATE)
    refute_equal 0, Rill::Ext.strerror(Rill::Ext::EINVAL).size
    assert_equal "RILL_ESTATE: #{Rill::Ext.strerror(Rill::Ext::ESTATE)}", e.message
    host.close
  end
end
