//! What goes in and out of the server: the events a BLE binding feeds it, and the actions it
//! must carry out. Plain values, so the whole server is tested without a radio.

use super::att::AttError;
use super::table::Handle;

/// ATT_MTU every connection starts with (Core Vol 3, Part F, 3.2.8): 20 bytes per notification.
pub const DEFAULT_ATT_MTU: u16 = 23;

/// Largest ATT_MTU the server accepts. The binding announces it as the server's Rx MTU in the
/// MTU exchange, so the negotiated MTU never exceeds it. 49 leaves room for the longest health
/// record (a 30-byte Body Composition Measurement) in one notification while keeping every
/// buffered value small.
pub const MAX_ATT_MTU: u16 = 49;

/// Capacity of a [`Value`]: a Read Response at [`MAX_ATT_MTU`] (ATT_MTU - 1 bytes).
pub const MAX_VALUE_LEN: usize = MAX_ATT_MTU as usize - 1;

/// An attribute value on its way to or from the air. The length is a byte, the capacity
/// [`MAX_VALUE_LEN`]: no allocation, 49 bytes.
pub type Value = heapless::Vec<u8, MAX_VALUE_LEN, u8>;

/// Most simultaneous connections a server can be built for; bounds the action list.
pub const MAX_CONNECTIONS: usize = 4;

/// Capacity of [`Actions`]: one response plus one send to every connection.
pub const MAX_ACTIONS: usize = MAX_CONNECTIONS + 1;

/// The actions one event or one send produces, in the order the binding must carry them out.
pub type Actions = heapless::Vec<Action, MAX_ACTIONS>;

/// A connection, named by the stack's connection handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u16);

/// A bonded peer, named by the binding (SoftDevice peer id, index in TrouBLE's bond list...).
/// CCCDs of bonded peers survive disconnection under this name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BondId(pub u16);

/// How a client wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Write Request: the server answers with a Write Response or an Error Response.
    Request,
    /// Write Command (write without response): no answer, even when refused.
    Command,
}

/// Something that happened on the radio side, fed to [`Server::handle`](super::Server::handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A central connected. `bond` is set when the stack recognised a bonded peer (its
    /// identity address, or a resolvable address resolved with its IRK): its CCCDs come back.
    Connected { conn: ConnId, bond: Option<BondId> },
    /// The connection ended; its indication queue is dropped, and an unbonded peer's CCCDs with
    /// it.
    Disconnected { conn: ConnId },
    /// The MTU exchange settled on `mtu` (clamped to 23..=[`MAX_ATT_MTU`]).
    Mtu { conn: ConnId, mtu: u16 },
    /// Read Request (`offset` 0) or Read Blob Request.
    Read {
        conn: ConnId,
        handle: Handle,
        offset: u16,
    },
    /// Write Request or Write Command.
    Write {
        conn: ConnId,
        handle: Handle,
        data: &'a [u8],
        kind: WriteKind,
    },
    /// The client confirmed the indication in flight: the next one may go.
    IndicationConfirmed { conn: ConnId },
    /// The link is encrypted with the keys of bond `bond` (after pairing, or when a bonded
    /// peer re-encrypts): encrypted characteristics open, and CCCDs are kept under `bond`.
    Bonded { conn: ConnId, bond: BondId },
    /// The board's monotonic time, in milliseconds; drives the device clock and the ATT
    /// transaction timeout.
    Tick { now_ms: u64 },
}

/// Why the server wants a connection closed. A binding may send HCI reason 0x13 (Remote User
/// Terminated Connection) for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Every connection slot is taken.
    TooManyConnections,
    /// An indication went unconfirmed for 30 s: the ATT bearer is dead (Core Vol 3, Part F,
    /// 3.3.3) and must not carry anything more.
    IndicationTimeout,
}

/// What the binding must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the pending request: a Read Response with the bytes, a Write Response (empty
    /// bytes) or an Error Response with the code. Never produced for a Write Command.
    Respond {
        conn: ConnId,
        result: Result<Value, AttError>,
    },
    /// Send a Handle Value Notification.
    Notify {
        conn: ConnId,
        handle: Handle,
        value: Value,
    },
    /// Send a Handle Value Indication; the client's confirmation comes back as
    /// [`Event::IndicationConfirmed`].
    Indicate {
        conn: ConnId,
        handle: Handle,
        value: Value,
    },
    /// Close the connection.
    Disconnect {
        conn: ConnId,
        reason: DisconnectReason,
    },
}

/// Appends an action. The list is sized for the worst case of one event (a response and one
/// send per connection, see [`MAX_ACTIONS`]), so it never overflows; the result is ignored on
/// purpose rather than panicking.
pub(crate) fn emit(actions: &mut Actions, action: Action) {
    let _ = actions.push(action);
}
