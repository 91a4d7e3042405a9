# gem build rill.gemspec && gem install ./rill-*.gem   (Ruby 3.1; needs cmake,
# a C compiler, swig and libev-dev). The extension is built with the
# repository's CMake and carries the librill.so.1 it was built with.
version = File.read(File.join(__dir__, "core/include/rill.h"))
               .scan(/#define RILL_VERSION_(?:MAJOR|MINOR|PATCH) (\d+)/).flatten.join(".")
Gem::Specification.new do |s|
  s.name = "rill"
  s.version = version
  s.summary = "asyncio's model on rill, an event loop in C on libev, with Fibers as tasks"
  s.description = "Rill.run, spawn, sleep, gather, wait_for, timeouts and task groups on Fibers, over librill."
  s.authors = ["the rill engineers"]
  s.license = "Nonstandard"
  s.required_ruby_version = ">= 3.1"
  s.files = Dir.chdir(__dir__) do
    Dir["CMakeLists.txt", "cmake/**/*", "core/**/*", "swig/**/*", "bindings/ruby/**/*",
        "bindings/common/**/*"].reject { |f| File.directory?(f) }
  end
  s.require_paths = ["bindings/ruby/lib"]
  s.extensions = ["bindings/ruby/ext/extconf.rb"]
end
