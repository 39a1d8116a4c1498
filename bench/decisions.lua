-- wrk script: POST decision requests for random apps among 10,000 (app0 .. app9999).
math.randomseed(os.time())
request = function()
  local body = string.format('{"app_id":"app%d","resources":{"executor_memory":"2g","executor_cores":2}}',
                             math.random(0, 9999))
  return wrk.format("POST", "/api/v1/decisions", {["Content-Type"] = "application/json"}, body)
end
