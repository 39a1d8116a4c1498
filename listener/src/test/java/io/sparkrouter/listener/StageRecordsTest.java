package io.sparkrouter.listener;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import org.apache.spark.SparkConf;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.StageInfo;
import scala.Option;

/** Stage records carry Spark's values; what is kept per stage and job does not grow with time. */
public class StageRecordsTest {

    /** 10,000 jobs through the listener, as a long-lived Connect server sees them: nothing is left over. */
    public void testStateStaysBoundedAfter10000Jobs() {
        SparkConf conf = new SparkConf(false)
                .set("spark.app.id", "local-test")
                .set("spark.router.listener.spoolDir", Check.tempDir().toString())
                .set("spark.router.listener.queueCapacity", "10");  // records are not what this test is about
        RouterListener listener = new RouterListener(conf);
        try {
            for (int job = 0; job < 10_000; job++) {
                StageInfo map = SparkEvents.stage(3 * job);
                StageInfo skipped = SparkEvents.stage(3 * job + 1);  // computed before: never submitted
                StageInfo result = SparkEvents.stage(3 * job + 2);
                listener.onJobStart(SparkEvents.jobStart(job, List.of(map, skipped, result), new Properties()));
                listener.onStageSubmitted(SparkEvents.submitted(map, new Properties()));
                listener.onTaskEnd(SparkEvents.taskEnd(map, 1, 10, true, 100));
                listener.onStageCompleted(SparkEvents.completed(map));
                listener.onStageSubmitted(SparkEvents.submitted(result, new Properties()));
                if (job % 3 != 0) {  // every third job ends with its last stage never completed
                    listener.onStageCompleted(SparkEvents.completed(result));
                }
                listener.onJobEnd(SparkEvents.jobEnd(job));
            }
            Check.equal(0, listener.stageRecords().trackedEntries(), "entries kept after all jobs ended");
        } finally {
            listener.onApplicationEnd(null);
        }
    }

    public void testSharedStageIsKeptWhileAJobStillIncludesIt() {
        StageRecords records = new StageRecords(new SparkConf(false));
        StageInfo shared = SparkEvents.stage(1);
        records.jobStarted(10, List.<Object>of(1, 2));
        records.jobStarted(11, List.<Object>of(1, 3));
        records.submitted(SparkEvents.submitted(shared, new Properties()));
        records.jobEnded(10);
        Check.equal(Integer.valueOf(10), records.completed(SparkEvents.completed(shared)).jobId(),
                "the job that first submitted the stage");
        records.jobEnded(11);
        Check.equal(0, records.trackedEntries(), "entries kept after both jobs ended");
    }

    /** Spark drops listener events when its queue overflows: jobs whose end was lost are forgotten too. */
    public void testJobsWhoseEndWasLostAreBounded() {
        StageRecords records = new StageRecords(new SparkConf(false));
        for (int job = 0; job < StageRecords.MAX_ACTIVE_JOBS + 500; job++) {
            records.jobStarted(job, List.<Object>of(job));
        }
        Check.isTrue(records.trackedEntries() <= 2 * StageRecords.MAX_ACTIVE_JOBS,
                "bounded: " + records.trackedEntries());
    }

    /** Spark's metric values, unchanged but for CPU time (ns → ms), attributed from the stage's properties. */
    public void testRecordCarriesSparksMetricValuesUnchanged() throws Exception {
        TaskMetrics metrics = new TaskMetrics();
        metrics.setExecutorRunTime(3_000);
        metrics.setExecutorCpuTime(2_500_000_000L);  // ns
        metrics.setJvmGCTime(10);
        metrics.shuffleReadMetrics().setRemoteBytesRead(7_000_000_000L);
        metrics.shuffleReadMetrics().setLocalBytesRead(300);
        metrics.shuffleReadMetrics().setRecordsRead(42);
        metrics.shuffleWriteMetrics().incBytesWritten(5_000_000_000L);
        metrics.shuffleWriteMetrics().incRecordsWritten(11);
        metrics.incMemoryBytesSpilled(111);
        metrics.incDiskBytesSpilled(222);
        metrics.inputMetrics().setBytesRead(333);
        metrics.inputMetrics().setRecordsRead(4);
        metrics.outputMetrics().setBytesWritten(555);
        metrics.outputMetrics().setRecordsWritten(6);
        StageInfo stage = SparkEvents.stage(7, 1, "groupBy at etl.py:12", metrics);
        Properties properties = new Properties();
        properties.setProperty(StageRecords.APP_ID, "etl.orders");
        properties.setProperty(StageRecords.RUN_ID, "r-123");
        properties.setProperty("spark.job.tags", "SparkConnect_OperationTag_User_alice_Session_"
                + "0f0e0d0c-0000-4000-8000-000000000001_Operation_0f0e0d0c-0000-4000-8000-000000000002");

        StageRecords records = new StageRecords(new SparkConf(false));
        records.jobStarted(4, List.<Object>of(6, 7));
        records.submitted(SparkEvents.submitted(stage, properties));
        records.taskEnded(SparkEvents.taskEnd(stage, 1, 100, true, 10));
        records.taskEnded(SparkEvents.taskEnd(stage, 2, 500, true, 7_777));
        records.taskEnded(SparkEvents.taskEnd(stage, 3, 400, false, 20));
        stage.submissionTime_$eq(Option.apply(1_763_850_001_000L));
        stage.completionTime_$eq(Option.apply(1_763_850_002_500L));
        StageRecord record = records.completed(new org.apache.spark.scheduler.SparkListenerStageCompleted(stage));
        JsonNode json = new ObjectMapper().readTree(new ObjectMapper().writeValueAsBytes(record));

        Check.equal("etl.orders", json.get("app_id").asText(), "app_id");
        Check.equal("r-123", json.get("run_id").asText(), "run_id");
        Check.equal("alice", json.get("connect_user_id").asText(), "connect_user_id");
        Check.equal("0f0e0d0c-0000-4000-8000-000000000001", json.get("connect_session_id").asText(), "session");
        Check.equal("0f0e0d0c-0000-4000-8000-000000000002", json.get("connect_operation_id").asText(), "operation");
        Check.equal(4, json.get("job_id").asInt(), "job_id");
        Check.equal(7, json.get("stage_id").asInt(), "stage_id");
        Check.equal(1, json.get("attempt").asInt(), "attempt");
        Check.equal("groupBy at etl.py:12", json.get("name").asText(), "name");
        Check.equal("succeeded", json.get("status").asText(), "status");
        Check.isTrue(json.get("failure_reason").isNull(), "failure_reason is null");
        Check.equal(1_763_850_001_000L, json.get("submission_time_ms").asLong(), "submission_time_ms");
        Check.equal(1_763_850_002_500L, json.get("completion_time_ms").asLong(), "completion_time_ms");
        Check.equal(1_500L, json.get("duration_ms").asLong(), "duration_ms");
        Check.equal(3, json.get("num_tasks").asInt(), "num_tasks");
        Check.equal(1, json.get("num_failed_tasks").asInt(), "num_failed_tasks");
        Check.equal(0, json.get("num_oom_failed_tasks").asInt(), "num_oom_failed_tasks");
        Check.equal(metrics.executorRunTime(), json.get("executor_run_time_ms").asLong(), "executor_run_time_ms");
        Check.equal(2_500L, json.get("executor_cpu_time_ms").asLong(), "executor_cpu_time_ms (from ns)");
        Check.equal(metrics.jvmGCTime(), json.get("jvm_gc_time_ms").asLong(), "jvm_gc_time_ms");
        Check.equal(7_000_000_300L, json.get("shuffle_read_bytes").asLong(), "shuffle_read_bytes");
        Check.equal(42L, json.get("shuffle_read_records").asLong(), "shuffle_read_records");
        Check.equal(5_000_000_000L, json.get("shuffle_write_bytes").asLong(), "shuffle_write_bytes");
        Check.equal(11L, json.get("shuffle_write_records").asLong(), "shuffle_write_records");
        Check.equal(111L, json.get("memory_spilled_bytes").asLong(), "memory_spilled_bytes");
        Check.equal(222L, json.get("disk_spilled_bytes").asLong(), "disk_spilled_bytes");
        Check.equal(333L, json.get("input_bytes").asLong(), "input_bytes");
        Check.equal(4L, json.get("input_records").asLong(), "input_records");
        Check.equal(555L, json.get("output_bytes").asLong(), "output_bytes");
        Check.equal(6L, json.get("output_records").asLong(), "output_records");
        Check.equal(7_777L, json.get("peak_execution_memory_bytes").asLong(), "peak_execution_memory_bytes");
        Check.equal(500L, json.get("max_task_duration_ms").asLong(), "max_task_duration_ms");
        Check.equal(400L, json.get("median_task_duration_ms").asLong(), "median_task_duration_ms");

        Set<String> fields = new TreeSet<>();
        json.fieldNames().forEachRemaining(fields::add);
        Set<String> documented = Check.documentedFields("## `POST /api/v1/ingest/stages`");
        documented.removeAll(Set.of("batch_id", "server_id", "spark_app_id", "stages"));
        Check.equal(documented, fields, "the record's fields are the documented ones");
    }

    public void testTasksThatRanOutOfMemoryAreCountedApart() {
        StageInfo stage = SparkEvents.stage(5);
        StageRecords records = new StageRecords(new SparkConf(false).set(StageRecords.APP_ID, "heavy"));
        records.submitted(SparkEvents.submitted(stage, new Properties()));
        records.taskEnded(SparkEvents.taskFailed(stage, 1,
                SparkEvents.exceptionFailure(new OutOfMemoryError("Java heap space"))));
        records.taskEnded(SparkEvents.taskFailed(stage, 2, SparkEvents.exceptionFailure(
                new org.apache.spark.memory.SparkOutOfMemoryError("UNABLE_TO_ACQUIRE_MEMORY",
                        java.util.Map.of("requestedBytes", "1024", "receivedBytes", "0")))));
        // The tasks that died with the executor, and a task's own bug, are failures but not out of memory.
        records.taskEnded(SparkEvents.taskFailed(stage, 3, SparkEvents.executorLost("1")));
        records.taskEnded(SparkEvents.taskFailed(stage, 4,
                SparkEvents.exceptionFailure(new IllegalStateException("bug"))));
        records.taskEnded(SparkEvents.taskEnd(stage, 5, 100, true, 10));
        StageRecord record = records.completed(SparkEvents.completed(stage));
        Check.equal(5, record.numTasks(), "num_tasks");
        Check.equal(4, record.numFailedTasks(), "num_failed_tasks");
        Check.equal(2, record.numOomFailedTasks(), "num_oom_failed_tasks");
    }

    public void testFailedStageCarriesItsReasonCut() {
        StageInfo stage = SparkEvents.stage(3);
        stage.failureReason_$eq(Option.apply("boom " + "x".repeat(2_000)));
        StageRecords records = new StageRecords(new SparkConf(false).set(StageRecords.APP_ID, "nightly"));
        StageRecord record = records.completed(SparkEvents.completed(stage));
        Check.equal("failed", record.status(), "status");
        Check.equal(1_000, record.failureReason().length(), "failure_reason cut");
        Check.equal("nightly", record.appId(), "app_id from the conf of a standalone run");
        Check.equal(null, record.jobId(), "job_id unknown");
    }
}
