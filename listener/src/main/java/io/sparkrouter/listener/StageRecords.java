package io.sparkrouter.listener;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.SparkConf;
import org.apache.spark.TaskEndReason;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;

/**
 * Builds one record per completed stage attempt (docs/ingest-protocol.md): who submitted it, from the
 * stage's Properties cached at submission (stage-completed events carry none), and its metrics. Per-task
 * figures (max peak memory, task durations) are kept only while the stage runs.
 *
 * <p>A Connect server runs for weeks: everything kept here is forgotten when the jobs that need it end,
 * including stages that never complete (skipped stages are never submitted; cancelled ones may not complete).
 * Called from Spark's listener bus thread only: no locking.
 */
final class StageRecords {
    static final String APP_ID = "spark.router.appId";
    static final String RUN_ID = "spark.router.runId";
    private static final String OPERATION_ID = "spark.connect.operation_id";
    private static final String JOB_TAGS = "spark.job.tags";
    // Connect's own job tag: SparkConnect_OperationTag_User_<user>_Session_<session>_Operation_<operation>
    private static final Pattern CONNECT_TAG =
            Pattern.compile("SparkConnect_OperationTag_User_(.*)_Session_([0-9a-fA-F-]+)_Operation_([0-9a-fA-F-]+)");
    // Spark drops listener events when its queue overflows: a lost job-end must not keep a job forever.
    static final int MAX_ACTIVE_JOBS = 10_000;

    /** What we keep of a stage attempt while it runs. */
    private static final class Running {
        final int stageId;
        final Map<String, String> properties;
        final Integer jobId;
        final List<Long> taskDurations = new ArrayList<>();
        long peakExecutionMemory;
        int tasks;
        int failedTasks;
        int oomFailedTasks;

        Running(int stageId, Map<String, String> properties, Integer jobId) {
            this.stageId = stageId;
            this.properties = properties;
            this.jobId = jobId;
        }
    }

    /** The job that first submitted a stage, and how many running jobs include it (jobs share stages). */
    private static final class StageJobs {
        final int firstJob;
        int runningJobs;

        StageJobs(int firstJob) {
            this.firstJob = firstJob;
        }
    }

    private final SparkConf conf;
    private final Map<String, Running> running = new HashMap<>();             // by stage attempt
    private final Map<Integer, StageJobs> jobsOfStage = new HashMap<>();      // by stage id
    private final Map<Integer, List<Integer>> stagesOfJob = new LinkedHashMap<>();  // running jobs, oldest first

    StageRecords(SparkConf conf) {
        this.conf = conf;
    }

    private static String key(int stageId, int attempt) {
        return stageId + "." + attempt;
    }

    void jobStarted(int jobId, Iterable<Object> stageIds) {
        if (stagesOfJob.size() >= MAX_ACTIVE_JOBS) {
            jobEnded(stagesOfJob.keySet().iterator().next());
        }
        List<Integer> stages = new ArrayList<>();
        for (Object id : stageIds) {
            int stageId = (Integer) id;
            stages.add(stageId);
            jobsOfStage.computeIfAbsent(stageId, unknown -> new StageJobs(jobId)).runningJobs++;
        }
        stagesOfJob.put(jobId, stages);
    }

    /**
     * A job ended: forget its stages unless another running job includes them, and every stage attempt that
     * no running job includes any more (those never complete: their records could only leak).
     */
    void jobEnded(int jobId) {
        List<Integer> stages = stagesOfJob.remove(jobId);
        for (int stageId : stages == null ? List.<Integer>of() : stages) {
            StageJobs jobs = jobsOfStage.get(stageId);
            if (jobs != null && --jobs.runningJobs <= 0) {
                jobsOfStage.remove(stageId);
            }
        }
        running.values().removeIf(stage -> !jobsOfStage.containsKey(stage.stageId));
    }

    void submitted(SparkListenerStageSubmitted event) {
        StageInfo stage = event.stageInfo();
        Map<String, String> kept = new HashMap<>();
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
        running.put(key(stage.stageId(), stage.attemptNumber()),
                new Running(stage.stageId(), kept, firstJobOf(stage.stageId())));
    }

    void taskEnded(SparkListenerTaskEnd event) {
        Running stage = running.get(key(event.stageId(), event.stageAttemptId()));
        if (stage == null) {
            return;  // a task that ended after its stage (a speculative copy, a zombie attempt)
        }
        stage.tasks++;
        if (!event.taskInfo().successful()) {
            stage.failedTasks++;
        }
        if (ranOutOfMemory(event.reason())) {
            stage.oomFailedTasks++;
        }
        stage.taskDurations.add(event.taskInfo().duration());
        TaskMetrics metrics = event.taskMetrics();
        if (metrics != null && metrics.peakExecutionMemory() > stage.peakExecutionMemory) {
            stage.peakExecutionMemory = metrics.peakExecutionMemory();
        }
    }

    /**
     * A task that failed with an OutOfMemoryError: the JVM's own (on a shared server it takes down the executor,
     * and other apps' tasks on it with it: those fail as ExecutorLostFailure, not counted here) or Spark's
     * SparkOutOfMemoryError (no execution memory left for it).
     */
    static boolean ranOutOfMemory(TaskEndReason reason) {
        return reason instanceof ExceptionFailure failure && failure.className() != null
                && failure.className().endsWith("OutOfMemoryError");
    }

    /** The record of a completed stage attempt; its running state is dropped. */
    StageRecord completed(SparkListenerStageCompleted event) {
        StageInfo stage = event.stageInfo();
        Running state = running.remove(key(stage.stageId(), stage.attemptNumber()));
        if (state == null) {
            state = new Running(stage.stageId(), fallbackProperties(), firstJobOf(stage.stageId()));
        }
        Map<String, String> properties = state.properties;
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
        boolean failed = stage.failureReason().isDefined();
        Long submitted = stage.submissionTime().isDefined() ? (Long) stage.submissionTime().get() : null;
        Long completed = stage.completionTime().isDefined() ? (Long) stage.completionTime().get() : null;
        // At completion, the stage's aggregate over its tasks; absent metrics are stored as zeros.
        TaskMetrics metrics = stage.taskMetrics() != null ? stage.taskMetrics() : new TaskMetrics();
        List<Long> durations = state.taskDurations;
        Collections.sort(durations);
        return new StageRecord(
                properties.get(APP_ID),
                properties.get(RUN_ID),
                session,
                operation,
                user,
                state.jobId,
                stage.stageId(),
                stage.attemptNumber(),
                stage.name(),
                failed ? "failed" : "succeeded",
                failed ? stage.failureReason().get() : null,
                submitted,
                completed,
                submitted != null && completed != null ? Math.max(0, completed - submitted) : null,
                state.tasks,
                state.failedTasks,
                state.oomFailedTasks,
                metrics.executorRunTime(),
                metrics.executorCpuTime() / 1_000_000,  // ns
                metrics.jvmGCTime(),
                metrics.shuffleReadMetrics().totalBytesRead(),
                metrics.shuffleReadMetrics().recordsRead(),
                metrics.shuffleWriteMetrics().bytesWritten(),
                metrics.shuffleWriteMetrics().recordsWritten(),
                metrics.memoryBytesSpilled(),
                metrics.diskBytesSpilled(),
                metrics.inputMetrics().bytesRead(),
                metrics.inputMetrics().recordsRead(),
                metrics.outputMetrics().bytesWritten(),
                metrics.outputMetrics().recordsWritten(),
                state.peakExecutionMemory,
                durations.isEmpty() ? 0 : durations.get(durations.size() - 1),
                durations.isEmpty() ? 0 : durations.get(durations.size() / 2));
    }

    private Integer firstJobOf(int stageId) {
        StageJobs jobs = jobsOfStage.get(stageId);
        return jobs == null ? null : jobs.firstJob;
    }

    private Map<String, String> fallbackProperties() {
        Map<String, String> kept = new HashMap<>();
        for (String name : new String[] {APP_ID, RUN_ID}) {
            String value = conf.get(name, null);
            if (value != null) {
                kept.put(name, value);
            }
        }
        return kept;
    }

    /** Entries kept in all of our maps together: bounded by what runs now, not by what ran since start. */
    int trackedEntries() {
        return running.size() + jobsOfStage.size() + stagesOfJob.size();
    }
}
