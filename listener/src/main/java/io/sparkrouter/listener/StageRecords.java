package io.sparkrouter.listener;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;

/**
 * Builds one record per completed stage attempt (docs/ingest-protocol.md): who submitted it, from the
 * stage's Properties cached at submission (stage-completed events carry none), and its metrics. Per-task
 * figures (max peak memory, task durations) are kept only while the stage runs.
 */
final class StageRecords {
    static final String APP_ID = "spark.router.appId";
    static final String RUN_ID = "spark.router.runId";
    private static final String OPERATION_ID = "spark.connect.operation_id";
    private static final String JOB_TAGS = "spark.job.tags";
    // Connect's own job tag: SparkConnect_OperationTag_User_<user>_Session_<session>_Operation_<operation>
    private static final Pattern CONNECT_TAG =
            Pattern.compile("SparkConnect_OperationTag_User_(.*)_Session_([0-9a-fA-F-]+)_Operation_([0-9a-fA-F-]+)");

    /** What we keep of a stage while it runs. Listener callbacks come from one thread: no locking. */
    private static final class Running {
        final Map<String, String> properties;
        final Integer jobId;
        final List<Long> taskDurations = new ArrayList<>();
        long peakExecutionMemory;
        int tasks;
        int failedTasks;

        Running(Map<String, String> properties, Integer jobId) {
            this.properties = properties;
            this.jobId = jobId;
        }
    }

    private final SparkConf conf;
    private final Map<String, Running> running = new ConcurrentHashMap<>();
    private final Map<Integer, Integer> jobOfStage = new ConcurrentHashMap<>();

    StageRecords(SparkConf conf) {
        this.conf = conf;
    }

    private static String key(int stageId, int attempt) {
        return stageId + "." + attempt;
    }

    void jobStarted(int jobId, Iterable<Object> stageIds) {
        for (Object stageId : stageIds) {
            jobOfStage.putIfAbsent((Integer) stageId, jobId);
        }
    }

    /** A job ended: forget its stages that never ran (skipped stages get no completion event). */
    void jobEnded(Iterable<Object> stageIds) {
        for (Object stageId : stageIds) {
            jobOfStage.remove((Integer) stageId);
        }
    }

    void submitted(SparkListenerStageSubmitted event) {
        StageInfo stage = event.stageInfo();
        Map<String, String> kept = new LinkedHashMap<>();
        Properties properties = event.properties();
        // Whitelist: job properties also hold plan text (callSite.long is ~2 KB per job).
        for (String name : new String[] {APP_ID, RUN_ID, OPERATION_ID, JOB_TAGS}) {
            String value = properties == null ? null : properties.getProperty(name);
            if (value == null && (name.equals(APP_ID) || name.equals(RUN_ID))) {
                value = conf.get(name, null);  // a standalone run gets them as spark-submit confs
            }
            if (value != null) {
                kept.put(name, value);
            }
        }
        running.put(key(stage.stageId(), stage.attemptNumber()), new Running(kept, jobOfStage.get(stage.stageId())));
    }

    void taskEnded(SparkListenerTaskEnd event) {
        Running stage = running.get(key(event.stageId(), event.stageAttemptId()));
        if (stage == null) {
            return;
        }
        stage.tasks++;
        if (!event.taskInfo().successful()) {
            stage.failedTasks++;
        }
        stage.taskDurations.add(event.taskInfo().duration());
        TaskMetrics metrics = event.taskMetrics();
        if (metrics != null && metrics.peakExecutionMemory() > stage.peakExecutionMemory) {
            stage.peakExecutionMemory = metrics.peakExecutionMemory();
        }
    }

    /** The record of a completed stage attempt; its running state is dropped. */
    Map<String, Object> completed(SparkListenerStageCompleted event) {
        StageInfo stage = event.stageInfo();
        Running state = running.remove(key(stage.stageId(), stage.attemptNumber()));
        if (state == null) {
            state = new Running(fallbackProperties(), jobOfStage.get(stage.stageId()));
        }
        Map<String, String> properties = state.properties;
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("app_id", properties.get(APP_ID));
        record.put("run_id", properties.get(RUN_ID));
        String user = null;
        String session = null;
        String operation = properties.get(OPERATION_ID);
        String tags = properties.get(JOB_TAGS);
        if (tags != null) {
            Matcher matcher = CONNECT_TAG.matcher(tags);
            if (matcher.find()) {
                user = matcher.group(1);
                session = matcher.group(2);
                operation = operation != null ? operation : matcher.group(3);
            }
        }
        record.put("connect_session_id", session);
        record.put("connect_operation_id", operation);
        record.put("connect_user_id", user);
        record.put("job_id", state.jobId);
        record.put("stage_id", stage.stageId());
        record.put("attempt", stage.attemptNumber());
        String name = stage.name();
        record.put("name", name != null && name.length() > 200 ? name.substring(0, 200) : name);
        boolean failed = stage.failureReason().isDefined();
        record.put("status", failed ? "failed" : "succeeded");
        String reason = failed ? stage.failureReason().get() : null;
        record.put("failure_reason", reason != null && reason.length() > 1000 ? reason.substring(0, 1000) : reason);
        Long submitted = stage.submissionTime().isDefined() ? (Long) stage.submissionTime().get() : null;
        Long completed = stage.completionTime().isDefined() ? (Long) stage.completionTime().get() : null;
        record.put("submission_time_ms", submitted);
        record.put("completion_time_ms", completed);
        record.put("duration_ms", submitted != null && completed != null ? Math.max(0, completed - submitted) : null);
        record.put("num_tasks", state.tasks);
        record.put("num_failed_tasks", state.failedTasks);
        TaskMetrics metrics = stage.taskMetrics();  // at completion: the stage's aggregate
        if (metrics != null) {
            record.put("executor_run_time_ms", metrics.executorRunTime());
            record.put("executor_cpu_time_ms", metrics.executorCpuTime() / 1_000_000);
            record.put("jvm_gc_time_ms", metrics.jvmGCTime());
            record.put("shuffle_read_bytes", metrics.shuffleReadMetrics().totalBytesRead());
            record.put("shuffle_read_records", metrics.shuffleReadMetrics().recordsRead());
            record.put("shuffle_write_bytes", metrics.shuffleWriteMetrics().bytesWritten());
            record.put("shuffle_write_records", metrics.shuffleWriteMetrics().recordsWritten());
            record.put("memory_spilled_bytes", metrics.memoryBytesSpilled());
            record.put("disk_spilled_bytes", metrics.diskBytesSpilled());
            record.put("input_bytes", metrics.inputMetrics().bytesRead());
            record.put("input_records", metrics.inputMetrics().recordsRead());
            record.put("output_bytes", metrics.outputMetrics().bytesWritten());
            record.put("output_records", metrics.outputMetrics().recordsWritten());
        }
        record.put("peak_execution_memory_bytes", state.peakExecutionMemory);
        List<Long> durations = state.taskDurations;
        Collections.sort(durations);
        record.put("max_task_duration_ms", durations.isEmpty() ? 0 : durations.get(durations.size() - 1));
        record.put("median_task_duration_ms", durations.isEmpty() ? 0 : durations.get(durations.size() / 2));
        return record;
    }

    private Map<String, String> fallbackProperties() {
        Map<String, String> kept = new LinkedHashMap<>();
        for (String name : new String[] {APP_ID, RUN_ID}) {
            String value = conf.get(name, null);
            if (value != null) {
                kept.put(name, value);
            }
        }
        return kept;
    }

    int runningStages() {
        return running.size();
    }
}
