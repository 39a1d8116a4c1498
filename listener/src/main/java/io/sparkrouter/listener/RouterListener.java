package io.sparkrouter.listener;

import org.apache.spark.SparkConf;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerApplicationEnd;
import org.apache.spark.scheduler.SparkListenerApplicationStart;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Spark Connect Router's listener: attributes every completed stage attempt to the client app and run that
 * submitted it (session confs {@code spark.router.appId} / {@code spark.router.runId}) and delivers it to the
 * router, with a heartbeat. Register with {@code --conf spark.extraListeners=io.sparkrouter.listener.RouterListener}.
 *
 * <p>Every callback returns at once and never throws into Spark: records go to a bounded queue that a
 * sender thread drains (see {@link Delivery}).
 */
public class RouterListener extends SparkListener {
    private static final Logger LOG = LoggerFactory.getLogger(RouterListener.class);

    private final StageRecords stages;
    private final Delivery.Identity identity = new Delivery.Identity();
    private Delivery delivery;
    private Heartbeat heartbeat;
    private volatile boolean closed;

    public RouterListener(SparkConf conf) {
        ListenerConfig config = new ListenerConfig(conf);
        stages = new StageRecords(conf);
        identity.sparkAppId = conf.get("spark.app.id", null);
        identity.serverId = config.serverId != null ? config.serverId : identity.sparkAppId;
        try {
            delivery = new Delivery(config, identity);
            heartbeat = new Heartbeat(config, identity, delivery);
            delivery.start();
            heartbeat.start();
            Runtime.getRuntime().addShutdownHook(new Thread(this::close, "spark-router-listener-shutdown"));
            int backlog = delivery.spool().files().size();
            if (config.url == null) {
                LOG.warn("spark-router listener: spark.router.listener.url is not set: stage records are spooled "
                        + "to {} and sent once a listener with a URL uses that directory", config.spoolDir);
            }
            int deadLetters = delivery.spool().deadLetters().size();
            LOG.info("spark-router listener: {} server {} reporting to {} (token: {}), spool {} ({} batch(es) "
                    + "waiting, {} in dead-letter/)", config.kind, identity.serverId, config.url,
                    config.token.source(), config.spoolDir, backlog, deadLetters);
        } catch (Throwable error) {  // a broken listener must not stop the Spark application
            LOG.error("spark-router listener disabled: {}", error.toString());
            delivery = null;
        }
    }

    /** For tests: what is kept per stage and job. */
    StageRecords stageRecords() {
        return stages;
    }

    private boolean enabled() {
        return delivery != null && !closed;
    }

    @Override
    public void onApplicationStart(SparkListenerApplicationStart event) {
        try {
            if (event.appId().isDefined()) {
                identity.sparkAppId = event.appId().get();
                if (identity.serverId == null) {
                    identity.serverId = identity.sparkAppId;
                }
            }
            if (heartbeat != null) {
                heartbeat.startTimeMs = event.time();
                heartbeat.beatNow();
            }
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onApplicationStart: {}", error.toString());
        }
    }

    @Override
    public void onJobStart(SparkListenerJobStart event) {
        if (!enabled()) {
            return;
        }
        try {
            heartbeat.runningJobs.incrementAndGet();
            stages.jobStarted(event.jobId(), CollectionConverters.asJava(event.stageIds()));
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onJobStart: {}", error.toString());
        }
    }

    @Override
    public void onJobEnd(SparkListenerJobEnd event) {
        if (!enabled()) {
            return;
        }
        try {
            heartbeat.runningJobs.decrementAndGet();
            stages.jobEnded(event.jobId());
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onJobEnd: {}", error.toString());
        }
    }

    @Override
    public void onStageSubmitted(SparkListenerStageSubmitted event) {
        if (!enabled()) {
            return;
        }
        try {
            stages.submitted(event);
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onStageSubmitted: {}", error.toString());
        }
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd event) {
        if (!enabled()) {
            return;
        }
        try {
            stages.taskEnded(event);
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onTaskEnd: {}", error.toString());
        }
    }

    @Override
    public void onStageCompleted(SparkListenerStageCompleted event) {
        if (!enabled()) {
            return;
        }
        try {
            StageRecord record = stages.completed(event);
            if (record.appId() == null) {
                heartbeat.unattributedStages.incrementAndGet();
            }
            delivery.offer(record);
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onStageCompleted: {}", error.toString());
        }
    }

    @Override
    public void onExecutorAdded(SparkListenerExecutorAdded event) {
        if (!enabled()) {
            return;
        }
        try {
            heartbeat.executorAdded(event.executorId(), event.executorInfo().totalCores());
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onExecutorAdded: {}", error.toString());
        }
    }

    @Override
    public void onExecutorRemoved(SparkListenerExecutorRemoved event) {
        if (!enabled()) {
            return;
        }
        try {
            heartbeat.executorRemoved(event.executorId());
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onExecutorRemoved: {}", error.toString());
        }
    }

    @Override
    public void onOtherEvent(SparkListenerEvent event) {
        if (!enabled()) {
            return;
        }
        try {
            heartbeat.connectEvent(event);
        } catch (Throwable error) {
            LOG.warn("spark-router listener: onOtherEvent: {}", error.toString());
        }
    }

    @Override
    public void onApplicationEnd(SparkListenerApplicationEnd event) {
        close();
    }

    /** Deliver or spool what is left; runs once, at application end or JVM exit, whichever comes first. */
    private synchronized void close() {
        if (closed || delivery == null) {
            return;
        }
        closed = true;
        try {
            heartbeat.stop();
            delivery.close();
            LOG.info("spark-router listener: closed; {} stage record(s) sent, {} dropped",
                    delivery.sentRecords(), delivery.dropped());
        } catch (Throwable error) {
            LOG.warn("spark-router listener: close: {}", error.toString());
        }
    }
}
