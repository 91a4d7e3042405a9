-- rill Lua binding: gather, wait_for, timeout, shield, wait, task groups.
local T = require "runner"
local rill = require "rill"

T.case("gather_in_argument_order", function()
  rill.run(function()
    local r = rill.gather(
      function() rill.sleep(0.03); return "a" end,
      function() rill.sleep(0.01); return "b" end,
      rill.spawn(function() return "c" end))
    T.same(r, { "a", "b", "c", n = 3 })
  end)
end)

T.case("gather_keeps_nil_holes", function()
  rill.run(function()
    local r = rill.gather(function() return nil end, function() return 2 end, function() end)
    T.eq(r.n, 3); T.eq(r[1], nil); T.eq(r[2], 2); T.eq(r[3], nil)
  end)
end)

T.case("gather_of_nothing", function()
  rill.run(function()
    local r = rill.gather()
    T.eq(r.n, 0)
    T.eq(rill.gather_list({}).n, 0)
  end)
end)

T.case("gather_first_error_others_keep_running", function()
  rill.run(function()
    local e = {}
    local finished = false
    local slow = rill.spawn(function() rill.sleep(0.3); finished = true; return 1 end)
    local err = T.raises(rill.gather, function() rill.sleep(0.01); error(e) end, slow)
    T.eq(err, e)
    T.eq(slow:done(), false)
    T.eq(slow:wait(), 1)
    T.eq(finished, true)
  end)
end)

T.case("gather_return_exceptions", function()
  rill.run(function()
    local e = {}
    local c = rill.spawn(function() rill.sleep(10) end)
    local r = rill.gather({ return_exceptions = true },
      function() return 1 end, function() error(e) end, c,
      function() c:cancel("x"); return 4 end)
    T.eq(r.n, 4); T.eq(r[1], 1); T.eq(r[2], e)
    T.ok(rill.is_cancelled(r[3])); T.eq(r[4], 4)
  end)
end)

T.case("gather_cancel_cancels_children", function()
  rill.run(function()
    local a = rill.spawn(function() rill.sleep(10) end)
    local b = rill.spawn(function() rill.sleep(10) end)
    local g = rill.spawn(function() return rill.gather(a, b) end)
    rill.sleep(0); rill.sleep(0)
    g:cancel()
    T.ok(rill.is_cancelled(T.raises(g.wait, g)))
    T.eq(a:cancelled(), true); T.eq(b:cancelled(), true)
  end)
end)

T.case("gather_same_task_twice", function()
  rill.run(function()
    local n = 0
    local t = rill.spawn(function() n = n + 1; return "v" end)
    T.same(rill.gather(t, t), { "v", "v", n = 2 })
    T.eq(n, 1)
  end)
end)

T.case("gather_child_cancelled_from_outside", function()
  rill.run(function()
    local a = rill.spawn(function() rill.sleep(10) end)
    local b = rill.spawn(function() rill.sleep(0.02); return "b" end)
    rill.get_running_loop():call_soon(function() a:cancel("out") end)
    local err = T.raises(rill.gather, a, b)
    T.ok(rill.is_cancelled(err)); T.eq(err.message, "out")
    T.eq(b:done(), false) -- not cancelled: keeps running
    T.eq(b:wait(), "b")
  end)
end)

T.case("wait_first_exception", function()
  rill.run(function()
    local e = {}
    local a = rill.spawn(function() rill.sleep(0.01); error(e) end)
    local b = rill.spawn(function() rill.sleep(1) end)
    local done, pending = rill.wait({ a, b }, { return_when = rill.FIRST_EXCEPTION })
    T.eq(#done, 1); T.eq(done[1], a); T.eq(pending[1], b)
    T.eq(a:error(), e)
    done = rill.wait({ rill.spawn(function() return 1 end) }, { return_when = rill.FIRST_EXCEPTION })
    T.eq(#done, 1)
    b:cancel()
  end)
end)

T.case("wait_for_ok_and_function", function()
  rill.run(function()
    T.eq(rill.wait_for(function() rill.sleep(0.01); return 5 end, 1), 5)
    local t = rill.spawn(function() return "t" end)
    T.eq(rill.wait_for(t, nil), "t")
  end)
end)

T.case("wait_for_timeout_cancels_and_waits_inner", function()
  rill.run(function()
    local cleaned = false
    local inner = rill.spawn(function()
      local ok, err = pcall(rill.sleep, 10)
      T.ok(not ok and rill.is_cancelled(err))
      rill.sleep(0.01) -- cleanup that takes a while: wait_for waits for it
      cleaned = true
      error(err, 0)
    end)
    local loop = rill.get_running_loop()
    local t0 = loop:time()
    local err = T.raises(rill.wait_for, inner, 0.02)
    T.ok(rill.is_timeout(err), tostring(err))
    T.eq(cleaned, true)
    T.eq(inner:cancelled(), true)
    T.ok(loop:time() - t0 >= 0.02)
  end)
end)

T.case("wait_for_zero_times_out", function()
  rill.run(function()
    T.ok(rill.is_timeout(T.raises(rill.wait_for, function() rill.sleep(1) end, 0)))
  end)
end)

T.case("wait_for_inner_error_same_value", function()
  rill.run(function()
    local e = {}
    T.eq(T.raises(rill.wait_for, function() error(e) end, 1), e)
  end)
end)

T.case("timeout_scope", function()
  rill.run(function()
    T.eq(rill.timeout(1, function(x) rill.sleep(0.001); return x end, "in"), "in")
    local after = false
    local err = T.raises(rill.timeout, 0.01, function() rill.sleep(1); after = true end)
    T.ok(rill.is_timeout(err), tostring(err))
    T.eq(after, false)
    -- no await in the body: no timeout
    T.eq(rill.timeout(0, function() return 1 end), 1)
    -- the task goes on normally afterwards
    rill.sleep(0.001)
  end)
end)

T.case("timeout_nested", function()
  rill.run(function()
    local inner_timed_out = false
    local err = T.raises(rill.timeout, 0.05, function()
      local e = T.raises(rill.timeout, 0.01, function() rill.sleep(1) end)
      inner_timed_out = rill.is_timeout(e)
      rill.sleep(1)
    end)
    T.ok(inner_timed_out)
    T.ok(rill.is_timeout(err))
  end)
end)

T.case("timeout_swallowed_cancel", function()
  rill.run(function()
    local r = rill.timeout(0.01, function()
      local ok = pcall(rill.sleep, 1)
      T.eq(ok, false)
      return "swallowed"
    end)
    T.eq(r, "swallowed")
  end)
end)

T.case("shield_protects_inner", function()
  rill.run(function()
    local inner = rill.spawn(function() rill.sleep(0.3); return "inner" end)
    local outer = rill.spawn(function() return rill.shield(inner) end)
    rill.sleep(0.005)
    outer:cancel()
    T.ok(rill.is_cancelled(T.raises(outer.wait, outer)))
    T.eq(inner:cancelled(), false)
    T.eq(inner:wait(), "inner")
  end)
end)

T.case("wait_first_completed_and_timeout", function()
  rill.run(function()
    local a = rill.spawn(function() rill.sleep(0.01); return 1 end)
    local b = rill.spawn(function() rill.sleep(1); return 2 end)
    local done, pending = rill.wait({ a, b }, { return_when = rill.FIRST_COMPLETED })
    T.eq(#done, 1); T.eq(done[1], a); T.eq(#pending, 1); T.eq(pending[1], b)
    done, pending = rill.wait({ b }, { timeout = 0.01 })
    T.eq(#done, 0); T.eq(#pending, 1)
    T.eq(b:cancelled(), false)
    b:cancel()
    T.matches(T.raises(rill.wait, {}), "empty")
  end)
end)

T.case("task_group_ok", function()
  rill.run(function()
    local ts
    local r = rill.task_group(function(tg)
      ts = { tg:spawn(function() rill.sleep(0.01); return 1 end), tg:spawn(function() return 2 end) }
      return "body"
    end)
    T.eq(r, "body")
    T.eq(ts[1]:result(), 1); T.eq(ts[2]:result(), 2)
  end)
end)

T.case("task_group_child_error_cancels_others", function()
  rill.run(function()
    local e = {}
    local other, body_cancelled
    local err = T.raises(rill.task_group, function(tg)
      other = tg:spawn(function() rill.sleep(10) end)
      tg:spawn(function() rill.sleep(0.01); error(e) end)
      local ok, ce = pcall(rill.sleep, 10)
      body_cancelled = not ok and rill.is_cancelled(ce)
      error(ce, 0)
    end)
    T.ok(rill.is_error(err) and err.code == rill.EGROUP, tostring(err))
    T.eq(#err.errors, 1); T.eq(err.errors[1], e)
    T.eq(other:cancelled(), true)
    T.eq(body_cancelled, true)
    -- the parent task goes on
    rill.sleep(0)
  end)
end)

T.case("task_group_body_error", function()
  rill.run(function()
    local e = {}
    local child
    local err = T.raises(rill.task_group, function(tg)
      child = tg:spawn(function() rill.sleep(10) end)
      rill.sleep(0)
      error(e)
    end)
    T.ok(rill.is_error(err) and err.code == rill.EGROUP, tostring(err))
    T.eq(err.errors[1], e)
    T.eq(child:cancelled(), true)
  end)
end)

T.case("task_group_error_order_children_then_body", function()
  -- asyncio 3.11 TaskGroup.__aexit__ (the core's rule): the children's
  -- errors in order of failure, then the body's own
  rill.run(function()
    local e1, e2, eb = { "c1" }, { "c2" }, { "body" }
    local err = T.raises(rill.task_group, function(tg)
      tg:spawn(function() rill.sleep(0.01); error(e1) end)
      tg:spawn(function() -- cancelled by the group: fails anyway
        pcall(rill.sleep, 10)
        rill.sleep(0)
        error(e2)
      end)
      pcall(rill.sleep, 10)
      error(eb) -- before e2 is raised; still listed last
    end)
    T.ok(rill.is_error(err) and err.code == rill.EGROUP, tostring(err))
    T.eq(#err.errors, 3)
    T.eq(err.errors[1], e1)
    T.eq(err.errors[2], e2)
    T.eq(err.errors[3], eb)
  end)
end)

T.case("task_group_cancel_while_exiting_waits_for_children", function()
  rill.run(function()
    local finished = false
    local t = rill.spawn(function()
      rill.task_group(function(tg)
        tg:spawn(function()
          local ok = pcall(rill.sleep, 10)
          rill.sleep(0.01) -- cleanup after the cancel
          finished = true
        end)
      end)
    end)
    rill.sleep(0.01)
    t:cancel()
    local ok, err = pcall(t.wait, t)
    T.ok(not ok and rill.is_cancelled(err), tostring(err))
    T.eq(finished, true)
  end)
end)

T.case("task_group_spawn_after_exit_raises", function()
  rill.run(function()
    local saved
    rill.task_group(function(tg) saved = tg end)
    T.ok(rill.is_error(T.raises(saved.spawn, saved, function() end)))
  end)
end)

T.case("task_group_parent_cancelled", function()
  rill.run(function()
    local child
    local parent = rill.spawn(function()
      rill.task_group(function(tg)
        child = tg:spawn(function() rill.sleep(10) end)
        rill.sleep(10)
      end)
    end)
    rill.sleep(0.01)
    parent:cancel()
    T.ok(rill.is_cancelled(T.raises(parent.wait, parent)))
    T.eq(child:cancelled(), true)
  end)
end)

T.main(...)
