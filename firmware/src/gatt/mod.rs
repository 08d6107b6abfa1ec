//! The GATT server core: transport-agnostic, `no_std`, no allocation.
//!
//! A BLE binding (TrouBLE, Nordic SoftDevice; see `GATT.md`) feeds [`Event`]s to
//! [`Server::handle`] and carries out the [`Action`]s it returns; the device's personality
//! declares its services as a [`Table`] and implements [`Application`] for the values it
//! computes, then pushes measurements with [`Server::notify`] and [`Server::indicate`].
//!
//! - [`att`]: the ATT error codes.
//! - [`uuid`], [`table`]: the attribute table, declared at compile time.
//! - [`cccd`]: client configuration of notifications and indications.
//! - [`bonds`]: CCCDs of bonded peers across connections.
//! - [`event`]: events in, actions out.
//! - [`server`]: the state machine.

pub mod att;
pub mod bonds;
pub mod cccd;
pub mod event;
pub mod server;
pub mod table;
pub mod uuid;

pub use att::{ApplicationError, AttError};
pub use bonds::BondRecord;
pub use cccd::{Cccd, Subscriptions};
pub use event::{
    Action, Actions, BondId, ConnId, DEFAULT_ATT_MTU, DisconnectReason, Event, MAX_ACTIONS,
    MAX_ATT_MTU, MAX_CONNECTIONS, MAX_VALUE_LEN, Value, WriteKind,
};
pub use server::{
    ATT_TIMEOUT_MS, Application, CharacteristicRef, INDICATION_QUEUE_LEN, MAX_NOTIFICATION_LEN,
    ReadRequest, Recipients, SendError, Server, SubscriptionChange, WriteRequest,
};
pub use table::{
    Attribute, AttributeKind, Attributes, Characteristic, Handle, MAX_SUBSCRIBABLE, Properties,
    Security, Service, Table, TableError, ValueSource,
};
pub use uuid::Uuid;
