//! The export queue: ending a span puts it on a bounded queue and returns at once; one
//! task takes batches off the queue and exports them. A call never waits for the
//! collector: when the queue is full (the collector is down or slow and the queue has
//! filled), the span is dropped and counted, and a failed or timed-out export counts its
//! spans as dropped too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::settings::QueueSettings;

/// Why spans were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The queue was full when the span ended.
    QueueFull,
    /// The collector refused the export, could not be reached, or did not answer in time.
    ExportFailed,
}

impl DropReason {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::ExportFailed => "export_failed",
        }
    }
}

/// The `reason` label of the drop counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DropLabels {
    reason: &'static str,
}

/// Spans dropped instead of exported, by reason; exposed by the data plane's metrics.
#[derive(Clone, Debug, Default)]
pub struct SpanDrops(Family<DropLabels, Counter>);

impl SpanDrops {
    /// Counts `n` spans dropped for `reason`.
    pub(crate) fn add(&self, reason: DropReason, n: u64) {
        self.0
            .get_or_create(&DropLabels {
                reason: reason.label(),
            })
            .inc_by(n);
    }

    /// Spans dropped so far for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0
            .get_or_create(&DropLabels {
                reason: reason.label(),
            })
            .get()
    }

    /// The counter family, to register in a metrics registry.
    pub(crate) fn family(&self) -> Family<DropLabels, Counter> {
        self.0.clone()
    }
}

/// The span processor: hands every sampled span to the export task without waiting.
/// The task is not woken per span: it wakes on its schedule, or when a batch's worth
/// is waiting.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    queue: mpsc::Sender<SpanData>,
    /// Spans per export: reaching this many queued wakes the export task early.
    max_batch: usize,
    max_queue: usize,
    batch_ready: Arc<Notify>,
    drops: SpanDrops,
    stop: CancellationToken,
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.queue.try_send(span).is_err() {
            self.drops.add(DropReason::QueueFull, 1);
            return;
        }
        let queued = self.max_queue - self.queue.capacity();
        if queued >= self.max_batch {
            self.batch_ready.notify_one();
        }
    }

    /// Spans go out on the export task's schedule; a flush cannot be waited for here
    /// without blocking a call, so it returns at once.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.stop.cancel();
        Ok(())
    }
}

/// Starts the export task on the current Tokio runtime and returns the processor that
/// feeds it, and the task's handle (it ends after `stop`, having exported what was
/// queued, each export still bounded by the export timeout).
pub(crate) fn start<E: SpanExporter + 'static>(
    exporter: E,
    settings: QueueSettings,
    drops: SpanDrops,
    stop: CancellationToken,
) -> (QueueProcessor, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.max_queue);
    let batch_ready = Arc::new(Notify::new());
    let task = tokio::spawn(export_loop(
        exporter,
        rx,
        settings,
        batch_ready.clone(),
        drops.clone(),
        stop.clone(),
    ));
    (
        QueueProcessor {
            queue: tx,
            max_batch: settings.max_batch,
            max_queue: settings.max_queue,
            batch_ready,
            drops,
            stop,
        },
        task,
    )
}

/// Exports what is queued every schedule delay, and as soon as a batch's worth is
/// waiting; on `stop`, exports what is left and ends.
async fn export_loop<E: SpanExporter>(
    exporter: E,
    mut rx: mpsc::Receiver<SpanData>,
    settings: QueueSettings,
    batch_ready: Arc<Notify>,
    drops: SpanDrops,
    stop: CancellationToken,
) {
    let failing = AtomicBool::new(false);
    loop {
        let stopping = tokio::select! {
            biased;
            () = stop.cancelled() => true,
            () = batch_ready.notified() => false,
            () = tokio::time::sleep(settings.schedule_delay) => false,
        };
        if stopping {
            rx.close();
        }
        // Full batches go out one after another; a partial one ends the round.
        loop {
            let mut batch = Vec::with_capacity(settings.max_batch);
            while batch.len() < settings.max_batch {
                match rx.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
            let full = batch.len() == settings.max_batch;
            export(&exporter, batch, &settings, &drops, &failing).await;
            if !full {
                break;
            }
        }
        if stopping {
            let _ = exporter.shutdown();
            return;
        }
    }
}

/// Exports one batch within the export timeout; a failure counts the batch as dropped
/// and is logged once until an export succeeds again.
async fn export<E: SpanExporter>(
    exporter: &E,
    batch: Vec<SpanData>,
    settings: &QueueSettings,
    drops: &SpanDrops,
    failing: &AtomicBool,
) {
    let n = batch.len() as u64;
    let result = tokio::time::timeout(settings.export_timeout, exporter.export(batch)).await;
    let problem = match result {
        Ok(Ok(())) => {
            if failing.swap(false, Ordering::Relaxed) {
                tracing::info!("trace export works again");
            }
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "no answer within {} ms (OTEL_BSP_EXPORT_TIMEOUT)",
            settings.export_timeout.as_millis()
        ),
    };
    drops.add(DropReason::ExportFailed, n);
    if !failing.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            spans = n,
            error = %problem,
            "trace export failed; spans are dropped and counted in atomicwork_mcp_trace_spans_dropped_total until it works again"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// An exporter that records what it was given, and can be made to fail or hang.
    #[derive(Debug, Clone, Default)]
    struct Recording {
        got: Arc<Mutex<Vec<String>>>,
        batches: Arc<Mutex<Vec<usize>>>,
        fail: Arc<AtomicBool>,
        hang: Arc<AtomicBool>,
    }

    impl SpanExporter for Recording {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if self.hang.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
            if self.fail.load(Ordering::Relaxed) {
                return Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                    "collector said no".into(),
                ));
            }
            self.batches.lock().unwrap().push(batch.len());
            self.got
                .lock()
                .unwrap()
                .extend(batch.into_iter().map(|s| s.name.to_string()));
            Ok(())
        }
    }

    fn settings(max_queue: usize, max_batch: usize) -> QueueSettings {
        QueueSettings {
            max_queue,
            max_batch,
            schedule_delay: Duration::from_millis(20),
            export_timeout: Duration::from_millis(200),
        }
    }

    fn provider(
        exporter: Recording,
        settings: QueueSettings,
    ) -> (
        SdkTracerProvider,
        SpanDrops,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let drops = SpanDrops::default();
        let stop = CancellationToken::new();
        let (processor, task) = start(exporter, settings, drops.clone(), stop.clone());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        (provider, drops, stop, task)
    }

    fn end_spans(provider: &SdkTracerProvider, names: impl IntoIterator<Item = String>) {
        let tracer = provider.tracer("test");
        for name in names {
            tracer.start(name).end();
        }
    }

    #[tokio::test]
    async fn spans_go_out_in_batches_and_the_rest_on_stop() {
        let exporter = Recording::default();
        let (provider, drops, stop, task) = provider(exporter.clone(), settings(64, 4));
        end_spans(&provider, (0..10).map(|i| format!("s{i}")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.cancel();
        task.await.unwrap();
        let got = exporter.got.lock().unwrap().clone();
        assert_eq!(got, (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
        assert!(exporter.batches.lock().unwrap().iter().all(|n| *n <= 4));
        assert_eq!(drops.get(DropReason::QueueFull), 0);
        assert_eq!(drops.get(DropReason::ExportFailed), 0);
    }

    #[tokio::test]
    async fn a_hung_collector_never_blocks_a_span_and_drops_are_counted() {
        let exporter = Recording::default();
        exporter.hang.store(true, Ordering::Relaxed);
        let (provider, drops, stop, task) = provider(exporter.clone(), settings(4, 2));
        // Ending spans while the export task waits on the collector returns at once.
        end_spans(&provider, (0..50).map(|i| format!("s{i}")));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let full = drops.get(DropReason::QueueFull);
        assert!(full >= 40, "{full} dropped for a full queue");
        assert!(
            drops.get(DropReason::ExportFailed) >= 2,
            "timed-out exports count"
        );
        stop.cancel();
        exporter.hang.store(false, Ordering::Relaxed);
        task.await.unwrap();
        let exported = exporter.got.lock().unwrap().len() as u64;
        assert_eq!(
            exported + full + drops.get(DropReason::ExportFailed),
            50,
            "every span is exported or counted"
        );
    }

    #[tokio::test]
    async fn a_failing_collector_counts_its_batches_and_recovery_resumes_export() {
        let exporter = Recording::default();
        exporter.fail.store(true, Ordering::Relaxed);
        let (provider, drops, stop, task) = provider(exporter.clone(), settings(64, 8));
        end_spans(&provider, (0..5).map(|i| format!("lost{i}")));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(drops.get(DropReason::ExportFailed), 5);
        exporter.fail.store(false, Ordering::Relaxed);
        end_spans(&provider, ["kept".to_string()]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(
            exporter.got.lock().unwrap().clone(),
            vec!["kept".to_string()]
        );
        assert_eq!(drops.get(DropReason::QueueFull), 0);
    }
}
