-- wrk script: POST batches of 500 new stage records (unique per thread and request) from five concurrent
-- runs, as a busy Connect server's listener sends them.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  batch_size = tonumber(args[1] or "500")
  app_prefix = args[2] or "bench"
end

request = function()
  counter = counter + 1
  local stages = {}
  for i = 1, batch_size do
    stages[i] = string.format(
      '{"app_id":"%s.app%d","run_id":"%s-run-%d-%d","stage_id":%d,"attempt":0,"status":"succeeded",' ..
      '"num_tasks":8,"executor_run_time_ms":1200,"executor_cpu_time_ms":900,"shuffle_write_bytes":123456,' ..
      '"shuffle_read_bytes":123456,"peak_execution_memory_bytes":1048576,"submission_time_ms":1763850000000,' ..
      '"completion_time_ms":1763850001000,"duration_ms":1000}',
      app_prefix, (counter + i) % 5, app_prefix, tid, (counter + i) % 5, counter * batch_size + i)
  end
  local body = string.format('{"server_id":"bench","spark_app_id":"%s-t%d","stages":[%s]}',
                             app_prefix, tid, table.concat(stages, ","))
  return wrk.format("POST", "/api/v1/ingest/stages", {["Content-Type"] = "application/json"}, body)
end
