//! Running components: static dispatch over the closed set of plugins.

use std::time::Duration;
use tokio::time::Instant;

use sluice_core::{ComponentError, Emitter, Msg, Sink, Source, SourceCx, Transform};
use sluice_plugin_camera::CameraSource;
use sluice_plugin_io::{ConsoleSink, FileSink};
use sluice_plugin_mqtt::{MqttSink, MqttSource};
use sluice_plugin_onnx::AnomalyTransform;
use sluice_plugin_sql::{FilterTransform, SqlTransform};
use sluice_plugin_summarize::SummarizeTransform;
use sluice_plugin_vision::{DetectTransform, FramesSource, TrackTransform, ZonesTransform};

/// Any running source.
// Built once per component and never moved on the data path.
#[allow(clippy::large_enum_variant)]
pub enum AnySource {
    /// MQTT subscriber.
    Mqtt(MqttSource),
    /// Camera frames from files or HTTP.
    Frames(FramesSource),
    /// A local camera.
    Camera(CameraSource),
}

/// Any running transform.
// Built once per component and never moved on the data path, like the
// sources and sinks.
#[allow(clippy::large_enum_variant)]
pub enum AnyTransform {
    /// Windowed or per-batch SQL.
    Sql(SqlTransform),
    /// SQL predicate filter.
    Filter(FilterTransform),
    /// ONNX anomaly scoring.
    Anomaly(AnomalyTransform),
    /// Event digests by a small language model.
    Summarize(SummarizeTransform),
    /// Object detection on frames.
    Detect(DetectTransform),
    /// Track ids for detections.
    Track(TrackTransform),
    /// Zone and line events.
    Zones(ZonesTransform),
}

/// Any running sink.
// Built once per component and never moved on the data path, so the size of
// the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum AnySink {
    /// MQTT publisher.
    Mqtt(MqttSink),
    /// JSON lines file.
    File(FileSink),
    /// Standard output.
    Console(ConsoleSink),
}

impl Source for AnySource {
    async fn run(self, cx: SourceCx) -> Result<(), ComponentError> {
        match self {
            AnySource::Mqtt(s) => s.run(cx).await,
            AnySource::Frames(s) => s.run(cx).await,
            AnySource::Camera(s) => s.run(cx).await,
        }
    }
}

impl Transform for AnyTransform {
    async fn process(&mut self, msg: Msg, out: &mut Emitter) -> Result<(), ComponentError> {
        match self {
            AnyTransform::Sql(t) => t.process(msg, out).await,
            AnyTransform::Filter(t) => t.process(msg, out).await,
            AnyTransform::Anomaly(t) => t.process(msg, out).await,
            AnyTransform::Summarize(t) => t.process(msg, out).await,
            AnyTransform::Detect(t) => t.process(msg, out).await,
            AnyTransform::Track(t) => t.process(msg, out).await,
            AnyTransform::Zones(t) => t.process(msg, out).await,
        }
    }

    async fn process_input(
        &mut self,
        input: usize,
        msg: Msg,
        out: &mut Emitter,
    ) -> Result<(), ComponentError> {
        match self {
            AnyTransform::Sql(t) => t.process_input(input, msg, out).await,
            AnyTransform::Filter(t) => t.process_input(input, msg, out).await,
            AnyTransform::Anomaly(t) => t.process_input(input, msg, out).await,
            AnyTransform::Summarize(t) => t.process_input(input, msg, out).await,
            AnyTransform::Detect(t) => t.process_input(input, msg, out).await,
            AnyTransform::Track(t) => t.process_input(input, msg, out).await,
            AnyTransform::Zones(t) => t.process_input(input, msg, out).await,
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        match self {
            AnyTransform::Sql(t) => t.tick_interval(),
            AnyTransform::Filter(t) => t.tick_interval(),
            AnyTransform::Anomaly(t) => t.tick_interval(),
            AnyTransform::Summarize(t) => t.tick_interval(),
            AnyTransform::Detect(t) => t.tick_interval(),
            AnyTransform::Track(t) => t.tick_interval(),
            AnyTransform::Zones(t) => t.tick_interval(),
        }
    }

    async fn on_tick(&mut self, now: Instant, out: &mut Emitter) -> Result<(), ComponentError> {
        match self {
            AnyTransform::Sql(t) => t.on_tick(now, out).await,
            AnyTransform::Filter(t) => t.on_tick(now, out).await,
            AnyTransform::Anomaly(t) => t.on_tick(now, out).await,
            AnyTransform::Summarize(t) => t.on_tick(now, out).await,
            AnyTransform::Detect(t) => t.on_tick(now, out).await,
            AnyTransform::Track(t) => t.on_tick(now, out).await,
            AnyTransform::Zones(t) => t.on_tick(now, out).await,
        }
    }

    async fn finish(&mut self, out: &mut Emitter) -> Result<(), ComponentError> {
        match self {
            AnyTransform::Sql(t) => t.finish(out).await,
            AnyTransform::Filter(t) => t.finish(out).await,
            AnyTransform::Anomaly(t) => t.finish(out).await,
            AnyTransform::Summarize(t) => t.finish(out).await,
            AnyTransform::Detect(t) => t.finish(out).await,
            AnyTransform::Track(t) => t.finish(out).await,
            AnyTransform::Zones(t) => t.finish(out).await,
        }
    }
}

impl Sink for AnySink {
    async fn write(&mut self, msg: &Msg) -> Result<(), ComponentError> {
        match self {
            AnySink::Mqtt(s) => s.write(msg).await,
            AnySink::File(s) => s.write(msg).await,
            AnySink::Console(s) => s.write(msg).await,
        }
    }

    async fn flush(&mut self) -> Result<(), ComponentError> {
        match self {
            AnySink::Mqtt(s) => s.flush().await,
            AnySink::File(s) => s.flush().await,
            AnySink::Console(s) => s.flush().await,
        }
    }
}
