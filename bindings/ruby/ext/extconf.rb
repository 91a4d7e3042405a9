# extconf.rb - `gem install` builds the Ruby binding with the repository's
# CMake for the Ruby running this script. The Makefile written here builds
# rill/ext.so and installs it with the librill.so.1 it was built with into
# the directory RubyGems gives as sitearchdir.
require "rbconfig"
root = File.expand_path("../../..", __dir__)
build = File.expand_path("cmake-build", Dir.pwd)
ruby = File.join(RbConfig::CONFIG["bindir"], RbConfig::CONFIG["ruby_install_name"])
off = %w[TESTS BENCH EXAMPLES INSTALL PYTHON LUA CPP].map { |o| "-DRILL_#{o}=OFF" }.join(" ")
File.write("Makefile", <<~MAKE)
  sitearchdir ?= #{RbConfig::CONFIG["sitearchdir"]}
  all:
  \tcmake -S "#{root}" -B "#{build}" -DCMAKE_BUILD_TYPE=Release -DRILL_RUBY=ON #{off} -DRILL_RUBY_EXECUTABLE="#{ruby}" -DRILL_RUBY_INSTALL_DIR="$(sitearchdir)"
  \tcmake --build "#{build}" --target rill_ruby
  install: all
  \tcmake --install "#{build}" --component ruby
  \trm -rf "#{build}"
  clean:
  \trm -rf "#{build}"
MAKE
