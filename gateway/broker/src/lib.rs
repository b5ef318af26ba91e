//! Embedded MQTT broker so sensors can publish straight to the gateway: the
//! `broker:` section of a pipeline file starts one next to the pipelines.
//!
//! The broker is rumqttd, run on its own OS threads (its router thread and one
//! thread for the listeners) so broker load never competes with pipeline tasks
//! on the async reactor. [`EmbeddedBroker::start`] returns only once the
//! broker answers an MQTT CONNECT, and never panics: bind failures and broker
//! failures come back as [`BrokerError`].
#![warn(missing_docs)]

mod probe;
mod server;

use std::net::SocketAddr;

pub use server::EmbeddedBroker;
pub use sluice_core::broker::BrokerConfig;

/// Failures starting the embedded broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The settings are out of range.
    #[error("invalid broker settings: {0}")]
    Invalid(String),
    /// The listen address is taken by another process.
    #[error("broker address {addr} is in use; set `broker.listen` to another address")]
    AddrInUse {
        /// The address that was asked for.
        addr: SocketAddr,
    },
    /// The listen address could not be bound for another reason.
    #[error("cannot bind broker address {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The broker thread could not be created.
    #[error("cannot start the broker thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The broker stopped or never answered during start-up.
    #[error("embedded broker failed to start: {0}")]
    Start(String),
}
