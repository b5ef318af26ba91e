//! [`catalog!`](crate::catalog!): everything the runtime needs to know about a
//! set of components, generated from one table with one line per component.
//!
//! Each line names an enum variant and a config type; the config's trait
//! ([`SourceConfig`](sluice_core::SourceConfig) and so on) supplies the
//! `type` string (`TYPE`), the payload a transform reads (`INPUT`) and the
//! running component (`Component`). From that the macro writes the config
//! enums and the running enums, the lists of kinds, `type_name`, the
//! type-first deserialiser and the dispatch of every trait method: static
//! dispatch, no boxing, no registration at link time.

/// Generates `AnySourceConfig`, `AnyTransformConfig`, `AnySinkConfig`, the
/// running `AnySource`, `AnyTransform`, `AnySink`, `SOURCE_KINDS`,
/// `TRANSFORM_KINDS`, `SINK_KINDS`, `describe_metrics()` and `Catalog`
/// (the table as a [`sluice_core::Catalog`]) in the calling module, from one
/// line per component:
///
/// ```ignore
/// sluice_core::catalog! {
///     sources { Mqtt(sluice_plugin_mqtt::MqttSourceConfig) }
///     transforms { Sql(sluice_plugin_sql::SqlConfig) }
///     sinks { File(sluice_plugin_io::FileSinkConfig) }
/// }
/// ```
#[macro_export]
macro_rules! catalog {
    (
        sources { $($sv:ident($sc:ty)),+ $(,)? }
        transforms { $($tv:ident($tc:ty)),+ $(,)? }
        sinks { $($kv:ident($kc:ty)),+ $(,)? }
    ) => {
        use $crate as __core;
        use __core::{SinkConfig as _, SourceConfig as _, TransformConfig as _};

        /// Source `type`s, for error messages.
        pub const SOURCE_KINDS: &[&str] = &[$(<$sc as __core::SourceConfig>::TYPE),+];
        /// Transform `type`s, for error messages.
        pub const TRANSFORM_KINDS: &[&str] = &[$(<$tc as __core::TransformConfig>::TYPE),+];
        /// Sink `type`s, for error messages.
        pub const SINK_KINDS: &[&str] = &[$(<$kc as __core::SinkConfig>::TYPE),+];

        /// Config of any source.
        // Parsed once per component; not worth boxing the largest variant.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum AnySourceConfig {
            $(#[doc = stringify!($sc)] $sv($sc),)+
        }

        /// Config of any transform.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum AnyTransformConfig {
            $(#[doc = stringify!($tc)] $tv($tc),)+
        }

        /// Config of any sink.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum AnySinkConfig {
            $(#[doc = stringify!($kc)] $kv($kc),)+
        }

        /// Any running source.
        // Built once per component and never moved on the data path.
        #[allow(clippy::large_enum_variant)]
        pub enum AnySource {
            $(#[doc = stringify!($sc)] $sv(<$sc as __core::SourceConfig>::Component),)+
        }

        /// Any running transform.
        #[allow(clippy::large_enum_variant)]
        pub enum AnyTransform {
            $(#[doc = stringify!($tc)] $tv(<$tc as __core::TransformConfig>::Component),)+
        }

        /// Any running sink.
        #[allow(clippy::large_enum_variant)]
        pub enum AnySink {
            $(#[doc = stringify!($kc)] $kv(<$kc as __core::SinkConfig>::Component),)+
        }

        /// Registers the help text of every metric the gateway and these
        /// components record; call once after installing the recorder.
        pub fn describe_metrics() {
            __core::metrics::describe_all();
            $(__core::metrics::describe(<$sc as __core::SourceConfig>::METRICS);)+
            $(__core::metrics::describe(<$tc as __core::TransformConfig>::METRICS);)+
            $(__core::metrics::describe(<$kc as __core::SinkConfig>::METRICS);)+
        }

        $crate::__type_first!(AnySourceConfig, "source", SOURCE_KINDS, SourceConfig, { $($sv($sc)),+ });
        $crate::__type_first!(AnyTransformConfig, "transform", TRANSFORM_KINDS, TransformConfig, { $($tv($tc)),+ });
        $crate::__type_first!(AnySinkConfig, "sink", SINK_KINDS, SinkConfig, { $($kv($kc)),+ });

        /// This table as the runtime's catalog: the type that
        /// `sluice_config::load_file` and `sluice_topology` are handed.
        #[derive(Debug, Clone, Copy, Default)]
        pub struct Catalog;

        impl __core::catalog::Catalog for Catalog {
            type Source = AnySourceConfig;
            type Transform = AnyTransformConfig;
            type Sink = AnySinkConfig;
        }

        impl __core::SourceEntry for AnySourceConfig {
            type Running = AnySource;

            fn type_name(&self) -> &'static str {
                match self { $(Self::$sv(_) => <$sc as __core::SourceConfig>::TYPE,)+ }
            }

            fn check(
                &self,
                v: &mut __core::Validator,
            ) -> Option<__core::arrow_schema::SchemaRef> {
                match self { $(Self::$sv(c) => c.check(v),)+ }
            }

            fn build(&self, cx: &__core::BuildCx) -> Result<AnySource, __core::BuildError> {
                Ok(match self { $(Self::$sv(c) => AnySource::$sv(c.build(cx)?),)+ })
            }
        }

        impl __core::TransformEntry for AnyTransformConfig {
            type Running = AnyTransform;

            fn type_name(&self) -> &'static str {
                match self { $(Self::$tv(_) => <$tc as __core::TransformConfig>::TYPE,)+ }
            }

            fn input_payload(&self) -> __core::Payload {
                match self { $(Self::$tv(_) => <$tc as __core::TransformConfig>::INPUT,)+ }
            }

            fn inputs(&self) -> &[String] {
                match self { $(Self::$tv(c) => c.inputs(),)+ }
            }

            fn buffer(&self) -> __core::BufferConfig {
                match self { $(Self::$tv(c) => c.buffer(),)+ }
            }

            fn reads_inputs_apart(&self) -> bool {
                match self { $(Self::$tv(c) => c.reads_inputs_apart(),)+ }
            }

            fn check(
                &self,
                inputs: &[__core::InputSchema],
                v: &mut __core::Validator,
            ) -> Option<__core::arrow_schema::SchemaRef> {
                match self { $(Self::$tv(c) => c.check(inputs, v),)+ }
            }

            fn build(&self, cx: &__core::BuildCx) -> Result<AnyTransform, __core::BuildError> {
                Ok(match self { $(Self::$tv(c) => AnyTransform::$tv(c.build(cx)?),)+ })
            }
        }

        impl __core::SinkEntry for AnySinkConfig {
            type Running = AnySink;

            fn type_name(&self) -> &'static str {
                match self { $(Self::$kv(_) => <$kc as __core::SinkConfig>::TYPE,)+ }
            }

            fn inputs(&self) -> &[String] {
                match self { $(Self::$kv(c) => c.inputs(),)+ }
            }

            fn buffer(&self) -> __core::BufferConfig {
                match self { $(Self::$kv(c) => c.buffer(),)+ }
            }

            fn check(&self, input: &__core::arrow_schema::SchemaRef, v: &mut __core::Validator) {
                match self { $(Self::$kv(c) => c.check(input, v),)+ }
            }

            fn build(&self, cx: &__core::BuildCx) -> Result<AnySink, __core::BuildError> {
                Ok(match self { $(Self::$kv(c) => AnySink::$kv(c.build(cx)?),)+ })
            }
        }

        impl __core::Source for AnySource {
            async fn run(self, cx: __core::SourceCx) -> Result<(), __core::ComponentError> {
                match self { $(Self::$sv(s) => s.run(cx).await,)+ }
            }
        }

        impl __core::Transform for AnyTransform {
            async fn process(
                &mut self,
                msg: __core::Msg,
                out: &mut __core::Emitter,
            ) -> Result<(), __core::ComponentError> {
                match self { $(Self::$tv(t) => t.process(msg, out).await,)+ }
            }

            async fn process_input(
                &mut self,
                input: usize,
                msg: __core::Msg,
                out: &mut __core::Emitter,
            ) -> Result<(), __core::ComponentError> {
                match self { $(Self::$tv(t) => t.process_input(input, msg, out).await,)+ }
            }

            fn tick_interval(&self) -> Option<::std::time::Duration> {
                match self { $(Self::$tv(t) => t.tick_interval(),)+ }
            }

            async fn on_tick(
                &mut self,
                now: $crate::__private::Instant,
                out: &mut __core::Emitter,
            ) -> Result<(), __core::ComponentError> {
                match self { $(Self::$tv(t) => t.on_tick(now, out).await,)+ }
            }

            async fn finish(&mut self, out: &mut __core::Emitter) -> Result<(), __core::ComponentError> {
                match self { $(Self::$tv(t) => t.finish(out).await,)+ }
            }
        }

        impl __core::Sink for AnySink {
            async fn write(&mut self, msg: &__core::Msg) -> Result<(), __core::ComponentError> {
                match self { $(Self::$kv(s) => s.write(msg).await,)+ }
            }

            async fn flush(&mut self) -> Result<(), __core::ComponentError> {
                match self { $(Self::$kv(s) => s.flush().await,)+ }
            }
        }
    };
}

/// The type-first deserialiser of one config enum: reads `type`, then hands
/// the *same* map stream to the chosen config, so every error keeps its
/// exact location.
#[doc(hidden)]
#[macro_export]
macro_rules! __type_first {
    ($ty:ident, $role:literal, $kinds:ident, $tr:ident, { $($variant:ident($cfg:ty)),+ }) => {
        impl<'de> $crate::__private::serde::Deserialize<'de> for $ty {
            fn deserialize<D>(d: D) -> Result<Self, D::Error>
            where
                D: $crate::__private::serde::Deserializer<'de>,
            {
                use $crate::__private::serde::de::{self, Deserialize as _, MapAccess, Visitor};
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "a {} with a `type` key", $role)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        let kind = $crate::__private::read_type(&mut map)?;
                        let rest = de::value::MapAccessDeserializer::new(map);
                        $(
                            if kind == <$cfg as __core::$tr>::TYPE {
                                return <$cfg>::deserialize(rest).map($ty::$variant);
                            }
                        )+
                        Err(de::Error::unknown_variant(&kind, $kinds))
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}
