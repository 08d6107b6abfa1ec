//! Hosts firmware that cannot leave its thread: the simulated board's parts borrow each other
//! (`RefCell`s and a clock shared by reference), so the device is built and driven on a thread of
//! its own, and the simulator talks to it through a channel.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use relais_firmware::gatt::{Action, Event, Table};

use crate::device::{Advertisement, VirtualDevice};
use crate::error::DeviceFault;

/// Firmware driven on its own thread.
pub trait Firmware {
    /// Feeds one BLE event.
    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault>;
    /// Runs the main loop up to `now_ms`.
    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault>;
}

/// An event that owns its written bytes, to cross the channel.
#[derive(Debug)]
struct OwnedEvent {
    /// The event, a Write's data left empty.
    event: Event<'static>,
    data: Vec<u8>,
}

impl OwnedEvent {
    fn new(event: Event<'_>) -> Self {
        match event {
            Event::Write {
                conn,
                handle,
                data,
                kind,
            } => Self {
                event: Event::Write {
                    conn,
                    handle,
                    data: &[],
                    kind,
                },
                data: data.to_vec(),
            },
            Event::Connected { conn, bond } => Self::plain(Event::Connected { conn, bond }),
            Event::Disconnected { conn } => Self::plain(Event::Disconnected { conn }),
            Event::Mtu { conn, mtu } => Self::plain(Event::Mtu { conn, mtu }),
            Event::Read {
                conn,
                handle,
                offset,
            } => Self::plain(Event::Read {
                conn,
                handle,
                offset,
            }),
            Event::IndicationConfirmed { conn } => Self::plain(Event::IndicationConfirmed { conn }),
            Event::Bonded { conn, bond } => Self::plain(Event::Bonded { conn, bond }),
            Event::Tick { now_ms } => Self::plain(Event::Tick { now_ms }),
        }
    }

    fn plain(event: Event<'static>) -> Self {
        Self {
            event,
            data: Vec::new(),
        }
    }

    fn event(&self) -> Event<'_> {
        match self.event {
            Event::Write {
                conn, handle, kind, ..
            } => Event::Write {
                conn,
                handle,
                data: &self.data,
                kind,
            },
            other => other,
        }
    }
}

#[derive(Debug)]
enum Request {
    Event(OwnedEvent),
    Poll(u64),
}

type Reply = SyncSender<Result<Vec<Action>, DeviceFault>>;

/// The requests the firmware thread serves; hand them to [`Requests::serve`].
#[derive(Debug)]
pub struct Requests {
    rx: Receiver<(Request, Reply)>,
}

impl Requests {
    /// Serves requests until the simulator drops the device.
    pub fn serve(self, firmware: &mut dyn Firmware) {
        while let Ok((request, reply)) = self.rx.recv() {
            let result = match request {
                Request::Event(owned) => firmware.handle(owned.event()),
                Request::Poll(now_ms) => firmware.poll(now_ms),
            };
            // The simulator stopped waiting: nothing to do about it.
            let _ = reply.send(result);
        }
    }
}

/// A [`VirtualDevice`] whose firmware runs on its own thread.
#[derive(Debug)]
pub struct ThreadedDevice {
    advertisement: Advertisement,
    table: &'static Table,
    paired: bool,
    tx: Option<SyncSender<(Request, Reply)>>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadedDevice {
    /// Starts `body` on a new thread; it builds the firmware there and calls
    /// [`Requests::serve`].
    pub fn spawn(
        advertisement: Advertisement,
        table: &'static Table,
        paired: bool,
        body: impl FnOnce(Requests) + Send + 'static,
    ) -> Result<Self, DeviceFault> {
        let (tx, rx) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("firmware {}", advertisement.address))
            .spawn(move || body(Requests { rx }))
            .map_err(|e| DeviceFault(format!("cannot start the firmware thread: {e}")))?;
        Ok(Self {
            advertisement,
            table,
            paired,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn request(&self, request: Request) -> Result<Vec<Action>, DeviceFault> {
        let gone = || DeviceFault("the firmware thread stopped".into());
        let (reply_tx, reply_rx) = sync_channel(1);
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send((request, reply_tx))
            .map_err(|_| gone())?;
        reply_rx.recv().map_err(|_| gone())?
    }
}

impl Drop for ThreadedDevice {
    fn drop(&mut self) {
        // Closing the channel ends `serve`, then the thread.
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl VirtualDevice for ThreadedDevice {
    fn advertisement(&self) -> &Advertisement {
        &self.advertisement
    }

    fn table(&self) -> &'static Table {
        self.table
    }

    fn initially_paired(&self) -> bool {
        self.paired
    }

    fn handle(&mut self, event: Event<'_>) -> Result<Vec<Action>, DeviceFault> {
        self.request(Request::Event(OwnedEvent::new(event)))
    }

    fn poll(&mut self, now_ms: u64) -> Result<Vec<Action>, DeviceFault> {
        self.request(Request::Poll(now_ms))
    }
}
