package io.sparkrouter.listener;

import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * One completed stage attempt, exactly as sent to the router (docs/ingest-protocol.md). Metric values are
 * Spark's own; the only conversion is executor CPU time, which Spark reports in ns. Strings are made storable
 * here, whoever builds the record: each is cut to the router's limit (code points), NULs replaced.
 */
record StageRecord(
        @JsonProperty("app_id") String appId,
        @JsonProperty("run_id") String runId,
        @JsonProperty("connect_session_id") String connectSessionId,
        @JsonProperty("connect_operation_id") String connectOperationId,
        @JsonProperty("connect_user_id") String connectUserId,
        @JsonProperty("job_id") Integer jobId,
        @JsonProperty("stage_id") int stageId,
        @JsonProperty("attempt") int attempt,
        @JsonProperty("name") String name,
        @JsonProperty("status") String status,
        @JsonProperty("failure_reason") String failureReason,
        @JsonProperty("submission_time_ms") Long submissionTimeMs,
        @JsonProperty("completion_time_ms") Long completionTimeMs,
        @JsonProperty("duration_ms") Long durationMs,
        @JsonProperty("num_tasks") int numTasks,
        @JsonProperty("num_failed_tasks") int numFailedTasks,
        @JsonProperty("num_oom_failed_tasks") int numOomFailedTasks,
        @JsonProperty("executor_run_time_ms") long executorRunTimeMs,
        @JsonProperty("executor_cpu_time_ms") long executorCpuTimeMs,
        @JsonProperty("jvm_gc_time_ms") long jvmGcTimeMs,
        @JsonProperty("shuffle_read_bytes") long shuffleReadBytes,
        @JsonProperty("shuffle_read_records") long shuffleReadRecords,
        @JsonProperty("shuffle_write_bytes") long shuffleWriteBytes,
        @JsonProperty("shuffle_write_records") long shuffleWriteRecords,
        @JsonProperty("memory_spilled_bytes") long memorySpilledBytes,
        @JsonProperty("disk_spilled_bytes") long diskSpilledBytes,
        @JsonProperty("input_bytes") long inputBytes,
        @JsonProperty("input_records") long inputRecords,
        @JsonProperty("output_bytes") long outputBytes,
        @JsonProperty("output_records") long outputRecords,
        @JsonProperty("peak_execution_memory_bytes") long peakExecutionMemoryBytes,
        @JsonProperty("max_task_duration_ms") long maxTaskDurationMs,
        @JsonProperty("median_task_duration_ms") long medianTaskDurationMs) {

    // The router's limits, in code points (service/schemas.py and the stage_metrics columns).
    static final int APP_ID_MAX = 200;
    static final int RUN_ID_MAX = 100;
    static final int CONNECT_SESSION_ID_MAX = 100;
    static final int CONNECT_OPERATION_ID_MAX = 100;
    static final int CONNECT_USER_ID_MAX = 200;
    static final int NAME_MAX = 200;
    static final int FAILURE_REASON_MAX = 1000;

    StageRecord {
        appId = Text.clean(appId, APP_ID_MAX);
        runId = Text.clean(runId, RUN_ID_MAX);
        connectSessionId = Text.clean(connectSessionId, CONNECT_SESSION_ID_MAX);
        connectOperationId = Text.clean(connectOperationId, CONNECT_OPERATION_ID_MAX);
        connectUserId = Text.clean(connectUserId, CONNECT_USER_ID_MAX);
        name = Text.clean(name, NAME_MAX);
        failureReason = Text.clean(failureReason, FAILURE_REASON_MAX);
    }
}
