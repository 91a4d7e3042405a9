# Every code of RILL_ERRNO_MAP maps to the Ruby exception the shared table
# (bindings/common/rill_errors.h) names, from a failing call and from a
# failed future alike.
require_relative "helper"
require "socket" # SocketError, named by the table for DNS codes

class TestErrors < Minitest::Test
  def table
    Rill::Ext.error_table
  end

  def test_table_has_every_code
    codes = Rill::Ext.constants.grep(/\AE[A-Z0-9]+\z/).map { |c| Rill::Ext.const_get(c) }.sort
    assert_equal codes, table.map(&:first).sort
    assert_operator table.size, :>=, 12
  end

  def test_every_code_maps_to_its_class
    table.each do |code, name, klass_name|
      e = Rill::Ext.error_for(code)
      assert_instance_of Object.const_get(klass_name), e, name
      next if e.is_a?(Rill::CancelledError)
      assert_equal code, e.instance_variable_get(:@code), name
      assert_equal "RILL_#{name}: #{Rill::Ext.strerror(code)}", e.message, name if e.instance_of?(Rill::Error)
    end
  end

  def test_failed_future_raises_the_same_class
    table.each do |code, name, klass_name|
      host = Rill::Ext::Loop.new
      f = Rill::Ext::Future.new(host)
      f.fail(code, "why")
      e = assert_raises(Object.const_get(klass_name), name) { Rill.wrap_future(f).value }
      assert_match(/why/, e.message, name) unless code == Rill::Ext::ECANCELLED
      host.close
    end
  end

  def test_known_classes
    assert_instance_of Rill::CancelledError, Rill::Ext.error_for(Rill::Ext::ECANCELLED)
    assert_instance_of Rill::TimeoutError, Rill::Ext.error_for(Rill::Ext::ETIMEDOUT)
    assert_instance_of ArgumentError, Rill::Ext.error_for(Rill::Ext::EINVAL)
    assert_instance_of Rill::Error, Rill::Ext.error_for(Rill::Ext::ESTATE)
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
    assert_equal "RILL_ESTATE: #{Rill::Ext.strerror(Rill::Ext::ESTATE)}", e.message
    host.close
  end
end
