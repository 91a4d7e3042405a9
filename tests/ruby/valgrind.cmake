# A sample of the Ruby suite under valgrind (labels ruby, valgrind), included
# at the end of bindings/ruby/CMakeLists.txt. Debian's ruby3.1 is not built
# --with-valgrind, so the VM's own frames on Fiber stacks and its
# conservative stack scan are suppressed (tests/ruby/valgrind.supp: errors
# whose top frame is in libruby) and undefined-value checks are off; an
# invalid read/write/free whose top frame is in rill (lib/rill/ext.so,
# librill) or libc still fails the test.
if(RILL_TESTS AND RILL_VALGRIND_TESTS)
  find_program(VALGRIND_EXECUTABLE valgrind)
  if(VALGRIND_EXECUTABLE)
    set(_rb_dir ${PROJECT_SOURCE_DIR}/tests/ruby)
    set(_rb_vg ${VALGRIND_EXECUTABLE} -q --error-exitcode=99 --leak-check=no
        --undef-value-errors=no --num-callers=30 --suppressions=${_rb_dir}/valgrind.supp
        --max-stackframe=262144)
    add_test(NAME ruby_valgrind.hostile
             COMMAND ${_rb_vg} ${RILL_RUBY_EXECUTABLE} -W0 test_hostile.rb
                     -n "/every_kind|gc_in_every|gc_during|throw|break|enumerators|finalizers|own_handle/"
             WORKING_DIRECTORY ${_rb_dir} ${RILL_HEAVY})
    add_test(NAME ruby_valgrind.combinators
             COMMAND ${_rb_vg} ${RILL_RUBY_EXECUTABLE} -W0 test_combinators.rb
             WORKING_DIRECTORY ${_rb_dir} ${RILL_HEAVY})
    # the sync primitives: waits, hand-offs, cancels, GC and loop close
    add_test(NAME ruby_valgrind.sync
             COMMAND ${_rb_vg} ${RILL_RUBY_EXECUTABLE} -W0 test_sync.rb
             WORKING_DIRECTORY ${_rb_dir} ${RILL_HEAVY})
    # the Fiber scheduler: I/O waits, block/unblock across threads, DNS, GC
    # (the timing tests are left out: valgrind is ~20x slower)
    add_test(NAME ruby_valgrind.scheduler
             COMMAND ${_rb_vg} ${RILL_RUBY_EXECUTABLE} -W0 test_scheduler.rb
                     -n "/pipe|timeout_interrupts|timeout_that|echo|mutex|queue_shared|fiber_schedule|standalone|cancel_reaches|gc_stress|address_resolve|threadsafe|call_at/"
             WORKING_DIRECTORY ${_rb_dir} ${RILL_HEAVY})
    # the explicit loop: runs, close, loops collected (or kept) without close, exit
    add_test(NAME ruby_valgrind.loop
             COMMAND ${_rb_vg} ${RILL_RUBY_EXECUTABLE} -W0 test_loop.rb
                     -n "/collected|dropped|compact|close|exit|closed|interrupt|describer|debug|scheduler|next/"
             WORKING_DIRECTORY ${_rb_dir} ${RILL_HEAVY})
    set_tests_properties(ruby_valgrind.hostile ruby_valgrind.combinators ruby_valgrind.sync
      ruby_valgrind.scheduler ruby_valgrind.loop PROPERTIES
      ENVIRONMENT "RUBYLIB=${RILL_RUBY_LIBDIR_BUILD}" LABELS "ruby;valgrind;heavy" TIMEOUT 300)
  endif()
endif()
