-- wrk script: POST decision requests for random apps among 10,000 (app0 .. app9999).
-- With an argument (mean think time in ms), each connection waits an exponentially distributed time before
-- each request: many connections then offer a steady rate (connections / think time) whatever the latency.
math.randomseed(os.time())

function init(args)
  think_ms = tonumber(args[1] or "0")
end

function delay()
  if think_ms <= 0 then return 0 end
  return -think_ms * math.log(1 - math.random())
end

request = function()
  local body = string.format('{"app_id":"app%d","resources":{"executor_memory":"2g","executor_cores":2}}',
                             math.random(0, 9999))
  return wrk.format("POST", "/api/v1/decisions", {["Content-Type"] = "application/json"}, body)
end
