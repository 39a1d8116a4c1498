package io.sparkrouter.listener;

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.ExecutorLostFailure;
import org.apache.spark.Success$;
import org.apache.spark.TaskEndReason;
import org.apache.spark.TaskState;
import org.apache.spark.UnknownReason$;
import org.apache.spark.executor.ExecutorMetrics;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.JobSucceeded$;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;
import org.apache.spark.scheduler.TaskInfo;
import org.apache.spark.scheduler.TaskLocality;
import org.apache.spark.scheduler.cluster.ExecutorInfo;
import scala.Option;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/** Spark's own listener events, built the way the DAGScheduler builds them. */
final class SparkEvents {
    private SparkEvents() {
    }

    static <T> Seq<T> seq(List<T> items) {
        return CollectionConverters.asScala(items).toSeq();
    }

    static StageInfo stage(int stageId, int attempt, String name, TaskMetrics metrics) {
        return new StageInfo(stageId, attempt, name, 4, seq(List.of()), seq(List.of()), "details", metrics,
                seq(List.of()), Option.empty(), 0, false, 0);
    }

    static StageInfo stage(int stageId) {
        return stage(stageId, 0, "stage " + stageId, new TaskMetrics());
    }

    static SparkListenerJobStart jobStart(int jobId, List<StageInfo> stages, Properties properties) {
        return new SparkListenerJobStart(jobId, System.currentTimeMillis(), seq(new ArrayList<>(stages)), properties);
    }

    static SparkListenerJobEnd jobEnd(int jobId) {
        return new SparkListenerJobEnd(jobId, System.currentTimeMillis(), JobSucceeded$.MODULE$);
    }

    static SparkListenerStageSubmitted submitted(StageInfo stage, Properties properties) {
        stage.submissionTime_$eq(Option.apply(System.currentTimeMillis()));
        return new SparkListenerStageSubmitted(stage, properties);
    }

    static SparkListenerStageCompleted completed(StageInfo stage) {
        stage.completionTime_$eq(Option.apply(System.currentTimeMillis()));
        return new SparkListenerStageCompleted(stage);
    }

    static SparkListenerTaskEnd taskEnd(StageInfo stage, long taskId, long durationMs, boolean success,
                                        long peakMemory) {
        TaskInfo info = new TaskInfo(taskId, (int) taskId, 0, (int) taskId, 1_000L, "1", "host",
                TaskLocality.PROCESS_LOCAL(), false);
        info.markFinished(success ? TaskState.FINISHED() : TaskState.FAILED(), 1_000L + durationMs);
        TaskMetrics metrics = new TaskMetrics();
        metrics.setPeakExecutionMemory(peakMemory);
        return new SparkListenerTaskEnd(stage.stageId(), stage.attemptNumber(), "ResultTask",
                success ? Success$.MODULE$ : UnknownReason$.MODULE$, info, new ExecutorMetrics(), metrics);
    }

    /** A failed task's end, with the reason the scheduler gave (an exception, a lost executor). */
    static SparkListenerTaskEnd taskFailed(StageInfo stage, long taskId, TaskEndReason reason) {
        TaskInfo info = new TaskInfo(taskId, (int) taskId, 0, (int) taskId, 1_000L, "1", "host",
                TaskLocality.PROCESS_LOCAL(), false);
        info.markFinished(TaskState.FAILED(), 1_100L);
        return new SparkListenerTaskEnd(stage.stageId(), stage.attemptNumber(), "ShuffleMapTask", reason, info,
                new ExecutorMetrics(), new TaskMetrics());
    }

    /** How an executor reports a task that threw `error` (Executor.TaskRunner). */
    static ExceptionFailure exceptionFailure(Throwable error) {
        return new ExceptionFailure(error, seq(List.of()));
    }

    /** How the driver ends the tasks of an executor that died (here: exit code 52, a JVM out of memory). */
    static ExecutorLostFailure executorLost(String executorId) {
        return new ExecutorLostFailure(executorId, true, Option.apply("Command exited with code 52"));
    }

    static SparkListenerExecutorAdded executorAdded(String executorId, int cores) {
        return new SparkListenerExecutorAdded(System.currentTimeMillis(), executorId,
                new ExecutorInfo("host", cores, scala.collection.immutable.Map$.MODULE$.<String, String>empty()));
    }

    static SparkListenerExecutorRemoved executorRemoved(String executorId) {
        return new SparkListenerExecutorRemoved(System.currentTimeMillis(), executorId, "test");
    }

    /** A stage record as the listener would send it, with its stage id as the only varying field. */
    static StageRecord record(int stageId) {
        return new StageRecord("app", "run", null, null, null, 1, stageId, 0, "stage " + stageId, "succeeded", null,
                1L, 2L, 1L, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1);
    }
}
