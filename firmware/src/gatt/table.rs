//! The attribute table: services and characteristics declared as `const` data, and the handles
//! they occupy. Nothing is allocated and nothing is copied to RAM: the table is a walk over
//! `&'static` slices, and a handle is found by counting (a device has a few dozen attributes).
//!
//! Each service takes one handle for its declaration; each characteristic two (declaration,
//! value) plus one for its Client Characteristic Configuration descriptor (CCCD) when it can
//! notify or indicate. Handles are consecutive from the table's first handle, in declaration
//! order, which is also the order in which a BLE stack assigns them when the binding registers
//! the services one by one (see `GATT.md`).
//!
//! A device declares its services in a few lines:
//!
//! ```
//! use relais_firmware::gatt::{Characteristic, Properties, Service, Table, Uuid};
//!
//! const FEATURE: [u8; 4] = 0x0000_0006u32.to_le_bytes();
//! const SCALE: Service = Service::primary(
//!     Uuid::sig(0x181D),
//!     &[
//!         Characteristic::new(Uuid::sig(0x2A9E), Properties::READ).with_static_value(&FEATURE),
//!         Characteristic::new(Uuid::sig(0x2A9D), Properties::INDICATE),
//!     ],
//! );
//! const TABLE: Table = relais_firmware::gatt_table!(1, &[SCALE]);
//! assert_eq!(TABLE.last_handle().0, 6); // service, 2 x (declaration, value), CCCD
//! ```

use super::event::Value;
use super::uuid::Uuid;
use crate::services::BuiltIn;

/// Most notifiable or indicatable characteristics a table may hold: the per-connection CCCD
/// state is a 32-bit word, two bits per characteristic.
pub const MAX_SUBSCRIBABLE: usize = 16;

/// An attribute handle, as the ATT protocol addresses attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle(pub u16);

/// The properties byte of a characteristic declaration: what a client may do with the value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Properties(u8);

impl Properties {
    /// No property: only useful to start a combination.
    pub const NONE: Self = Self(0);
    /// The value can be read.
    pub const READ: Self = Self(0x02);
    /// The value can be written with Write Command (no response).
    pub const WRITE_WITHOUT_RESPONSE: Self = Self(0x04);
    /// The value can be written with Write Request (acknowledged).
    pub const WRITE: Self = Self(0x08);
    /// The server can notify the value (unacknowledged); the characteristic gets a CCCD.
    pub const NOTIFY: Self = Self(0x10);
    /// The server can indicate the value (acknowledged); the characteristic gets a CCCD.
    pub const INDICATE: Self = Self(0x20);

    /// Both sets of properties; `const`, so tables can combine them.
    pub const fn and(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every property of `other` is present.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The byte of the characteristic declaration.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the characteristic needs a CCCD.
    pub const fn is_subscribable(self) -> bool {
        self.0 & (Self::NOTIFY.0 | Self::INDICATE.0) != 0
    }

    /// Whether a client can write the value in either way.
    pub const fn is_writable(self) -> bool {
        self.0 & (Self::WRITE.0 | Self::WRITE_WITHOUT_RESPONSE.0) != 0
    }
}

impl core::ops::BitOr for Properties {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.and(other)
    }
}

impl core::fmt::Debug for Properties {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(Properties, &str); 5] = [
            (Properties::READ, "READ"),
            (Properties::WRITE_WITHOUT_RESPONSE, "WRITE_WITHOUT_RESPONSE"),
            (Properties::WRITE, "WRITE"),
            (Properties::NOTIFY, "NOTIFY"),
            (Properties::INDICATE, "INDICATE"),
        ];
        let mut set = f.debug_set();
        for (property, name) in NAMES {
            if self.contains(property) {
                set.entry(&format_args!("{name}"));
            }
        }
        set.finish()
    }
}

/// Where a characteristic's value comes from when a client reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// Fixed bytes kept in flash (feature words, strings): served by the core, never written.
    Static(&'static [u8]),
    /// Asked of the [`Application`](super::Application) on every read; writes go to it too.
    Application,
    /// Served by one of the core's own services (Current Time, Device Information).
    BuiltIn(BuiltIn),
}

/// What the link must offer before the value (and its CCCD) may be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Any connection.
    Open,
    /// An encrypted link with a bonded peer. Until then reads and writes fail with
    /// Insufficient Authentication (no bond yet: the client should pair) or Insufficient
    /// Encryption (a bonded peer that has not encrypted yet), and nothing is sent to it.
    Encrypted,
}

/// One characteristic: its type, properties, value source and access rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Characteristic {
    /// The characteristic type.
    pub uuid: Uuid,
    /// What clients may do with the value.
    pub properties: Properties,
    /// Where reads are served from.
    pub value: ValueSource,
    /// What the link must offer.
    pub security: Security,
    /// A control point (RACP, SOCP): a write is refused with 0xFD "CCCD improperly configured"
    /// unless the writer has enabled its indications, since the answer comes as an indication.
    pub control_point: bool,
}

impl Characteristic {
    /// A characteristic whose value the application supplies, open to any connection.
    pub const fn new(uuid: Uuid, properties: Properties) -> Self {
        Self {
            uuid,
            properties,
            value: ValueSource::Application,
            security: Security::Open,
            control_point: false,
        }
    }

    /// Serves `bytes` from flash instead of asking the application.
    pub const fn with_static_value(self, bytes: &'static [u8]) -> Self {
        self.with_value(ValueSource::Static(bytes))
    }

    /// Serves the value from `source`.
    pub const fn with_value(mut self, source: ValueSource) -> Self {
        self.value = source;
        self
    }

    /// Requires an encrypted, bonded link (as the Glucose Service does).
    pub const fn requiring_encryption(mut self) -> Self {
        self.security = Security::Encrypted;
        self
    }

    /// Marks the characteristic as a control point (see [`Characteristic::control_point`]).
    pub const fn as_control_point(mut self) -> Self {
        self.control_point = true;
        self
    }

    /// Handles the characteristic occupies: declaration, value and maybe a CCCD.
    const fn handle_count(&self) -> u32 {
        if self.properties.is_subscribable() {
            3
        } else {
            2
        }
    }
}

/// A primary service and its characteristics, in handle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The service type.
    pub uuid: Uuid,
    /// Its characteristics, in the order their handles are assigned.
    pub characteristics: &'static [Characteristic],
}

impl Service {
    /// A primary service.
    pub const fn primary(uuid: Uuid, characteristics: &'static [Characteristic]) -> Self {
        Self {
            uuid,
            characteristics,
        }
    }
}

/// Why a list of services cannot become a table. Every variant names what is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// Handle 0 is reserved by ATT.
    FirstHandleZero,
    /// The table has no service.
    NoServices,
    /// A service has no characteristic.
    EmptyService { service: Uuid },
    /// The handles would run past 0xFFFF.
    HandlesExhausted,
    /// More than [`MAX_SUBSCRIBABLE`] characteristics can notify or indicate.
    TooManySubscribable { count: usize },
    /// A characteristic has none of read, write, notify and indicate.
    NoProperties { characteristic: Uuid },
    /// A characteristic served from flash cannot accept writes.
    StaticValueWritable { characteristic: Uuid },
    /// A control point must be writable (with response) and indicatable.
    ControlPointNeedsWriteAndIndicate { characteristic: Uuid },
}

impl TableError {
    /// Stops the build with the reason: [`gatt_table!`](crate::gatt_table) calls it in a
    /// `const` block, so a malformed table never reaches a device.
    #[allow(
        clippy::panic,
        reason = "only evaluated at compile time by gatt_table!"
    )]
    pub const fn fail_build(self) -> ! {
        match self {
            Self::FirstHandleZero => panic!("GATT table: the first handle must not be 0"),
            Self::NoServices => panic!("GATT table: no service"),
            Self::EmptyService { .. } => panic!("GATT table: a service has no characteristic"),
            Self::HandlesExhausted => panic!("GATT table: handles run past 0xFFFF"),
            Self::TooManySubscribable { .. } => {
                panic!("GATT table: more than 16 characteristics notify or indicate")
            }
            Self::NoProperties { .. } => panic!("GATT table: a characteristic has no property"),
            Self::StaticValueWritable { .. } => {
                panic!("GATT table: a static value cannot be writable")
            }
            Self::ControlPointNeedsWriteAndIndicate { .. } => {
                panic!("GATT table: a control point needs WRITE and INDICATE")
            }
        }
    }
}

/// Builds a [`Table`] at compile time: `gatt_table!(first_handle, &[SERVICE, ...])`. A
/// malformed table is a build error that names the fault.
#[macro_export]
macro_rules! gatt_table {
    ($first_handle:expr, $services:expr) => {{
        // A const item, not a const block: its initializer may borrow temporaries for 'static.
        const TABLE: $crate::gatt::Table = match $crate::gatt::Table::new($first_handle, $services)
        {
            Ok(table) => table,
            Err(error) => error.fail_build(),
        };
        TABLE
    }};
}

/// A checked list of services with their handles. `Copy` and a few bytes big: it points into
/// flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    services: &'static [Service],
    first: u16,
    last: u16,
    subscribable: u8,
}

impl Table {
    /// Checks `services` and lays them out from `first_handle` (the first handle after the
    /// attributes the BLE stack adds itself, such as the GAP and GATT services).
    pub const fn new(first_handle: u16, services: &'static [Service]) -> Result<Self, TableError> {
        if first_handle == 0 {
            return Err(TableError::FirstHandleZero);
        }
        if services.is_empty() {
            return Err(TableError::NoServices);
        }
        let mut handles: u32 = 0;
        let mut subscribable: usize = 0;
        let mut rest_services = services;
        while let [service, tail @ ..] = rest_services {
            rest_services = tail;
            if service.characteristics.is_empty() {
                return Err(TableError::EmptyService {
                    service: service.uuid,
                });
            }
            handles += 1;
            let mut rest = service.characteristics;
            while let [characteristic, tail @ ..] = rest {
                rest = tail;
                if let Err(e) = Self::check(characteristic) {
                    return Err(e);
                }
                if characteristic.properties.is_subscribable() {
                    subscribable += 1;
                }
                handles += characteristic.handle_count();
            }
        }
        let last = first_handle as u32 + handles - 1;
        if last > u16::MAX as u32 {
            return Err(TableError::HandlesExhausted);
        }
        if subscribable > MAX_SUBSCRIBABLE {
            return Err(TableError::TooManySubscribable {
                count: subscribable,
            });
        }
        Ok(Self {
            services,
            first: first_handle,
            last: last as u16,
            subscribable: subscribable as u8,
        })
    }

    const fn check(c: &Characteristic) -> Result<(), TableError> {
        let p = c.properties;
        let any = Properties::READ
            .and(Properties::WRITE)
            .and(Properties::WRITE_WITHOUT_RESPONSE)
            .and(Properties::NOTIFY)
            .and(Properties::INDICATE);
        if p.bits() & any.bits() == 0 {
            return Err(TableError::NoProperties {
                characteristic: c.uuid,
            });
        }
        if matches!(c.value, ValueSource::Static(_)) && p.is_writable() {
            return Err(TableError::StaticValueWritable {
                characteristic: c.uuid,
            });
        }
        if c.control_point && !(p.contains(Properties::WRITE) && p.contains(Properties::INDICATE)) {
            return Err(TableError::ControlPointNeedsWriteAndIndicate {
                characteristic: c.uuid,
            });
        }
        Ok(())
    }

    /// The handle of the first service declaration.
    pub const fn first_handle(&self) -> Handle {
        Handle(self.first)
    }

    /// The last handle the table occupies.
    pub const fn last_handle(&self) -> Handle {
        Handle(self.last)
    }

    /// How many characteristics have a CCCD.
    pub const fn subscribable_count(&self) -> usize {
        self.subscribable as usize
    }

    /// The services, in handle order.
    pub const fn services(&self) -> &'static [Service] {
        self.services
    }

    /// The value handle of the first characteristic of type `uuid`; `const`, so a device can
    /// name its handles at compile time.
    pub const fn value_handle(&self, uuid: Uuid) -> Option<Handle> {
        let mut handle = self.first as u32;
        let mut rest_services = self.services;
        while let [service, tail @ ..] = rest_services {
            rest_services = tail;
            handle += 1; // The service declaration.
            let mut rest = service.characteristics;
            while let [characteristic, tail @ ..] = rest {
                rest = tail;
                if characteristic.uuid.same_as(&uuid) {
                    return Some(Handle((handle + 1) as u16));
                }
                handle += characteristic.handle_count();
            }
        }
        None
    }

    /// Every attribute in handle order: what a binding registers with its stack, or uses to
    /// answer discovery itself.
    pub fn attributes(&self) -> Attributes {
        Attributes {
            services: self.services,
            service: 0,
            characteristic: 0,
            step: Step::Service,
            next_handle: self.first,
            next_slot: 0,
        }
    }

    /// The attribute at `handle`, if the table has one.
    pub fn attribute(&self, handle: Handle) -> Option<Attribute> {
        if handle.0 < self.first || handle.0 > self.last {
            return None;
        }
        self.attributes().find(|a| a.handle == handle)
    }
}

/// What an attribute is, with what the core needs to serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    /// A Primary Service declaration (type 0x2800); its value is the service UUID.
    PrimaryService(&'static Service),
    /// A characteristic declaration (type 0x2803); its value is properties, value handle, UUID.
    CharacteristicDeclaration {
        characteristic: &'static Characteristic,
        value_handle: Handle,
    },
    /// A characteristic value; `slot` indexes its CCCD state when it has one.
    Value {
        characteristic: &'static Characteristic,
        slot: Option<u8>,
    },
    /// A Client Characteristic Configuration descriptor (type 0x2902).
    Cccd {
        characteristic: &'static Characteristic,
        value_handle: Handle,
        slot: u8,
    },
}

/// One attribute of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// Where it lives.
    pub handle: Handle,
    /// What it is.
    pub kind: AttributeKind,
}

impl Attribute {
    /// The attribute type, as discovery reports it.
    pub fn type_uuid(&self) -> Uuid {
        match self.kind {
            AttributeKind::PrimaryService(_) => Uuid::PRIMARY_SERVICE,
            AttributeKind::CharacteristicDeclaration { .. } => Uuid::CHARACTERISTIC,
            AttributeKind::Value { characteristic, .. } => characteristic.uuid,
            AttributeKind::Cccd { .. } => Uuid::CLIENT_CHARACTERISTIC_CONFIGURATION,
        }
    }

    /// The value of a declaration (service or characteristic); `None` for other attributes,
    /// whose values depend on the connection or the application.
    pub fn declaration_value(&self) -> Option<Value> {
        let mut out = Value::new();
        let fits = match self.kind {
            AttributeKind::PrimaryService(service) => service.uuid.append_to(&mut out),
            AttributeKind::CharacteristicDeclaration {
                characteristic,
                value_handle,
            } => {
                out.push(characteristic.properties.bits()).is_ok()
                    && out.extend_from_slice(&value_handle.0.to_le_bytes()).is_ok()
                    && characteristic.uuid.append_to(&mut out)
            }
            AttributeKind::Value { .. } | AttributeKind::Cccd { .. } => return None,
        };
        // A declaration is at most 1 + 2 + 16 bytes, well within a value.
        fits.then_some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Service,
    Declaration,
    Value,
    Cccd,
}

/// Iterator over a table's attributes, in handle order.
#[derive(Debug, Clone)]
pub struct Attributes {
    services: &'static [Service],
    service: usize,
    characteristic: usize,
    step: Step,
    next_handle: u16,
    next_slot: u8,
}

impl Attributes {
    fn take_handle(&mut self) -> Handle {
        let handle = Handle(self.next_handle);
        // The table checked that its last handle fits; past it the iterator has ended.
        self.next_handle = self.next_handle.wrapping_add(1);
        handle
    }
}

impl Iterator for Attributes {
    type Item = Attribute;

    fn next(&mut self) -> Option<Attribute> {
        loop {
            let service = self.services.get(self.service)?;
            let current = service.characteristics.get(self.characteristic);
            match (self.step, current) {
                (Step::Service, _) => {
                    self.step = Step::Declaration;
                    let handle = self.take_handle();
                    return Some(Attribute {
                        handle,
                        kind: AttributeKind::PrimaryService(service),
                    });
                }
                (_, None) => {
                    self.service += 1;
                    self.characteristic = 0;
                    self.step = Step::Service;
                }
                (Step::Declaration, Some(characteristic)) => {
                    self.step = Step::Value;
                    let handle = self.take_handle();
                    return Some(Attribute {
                        handle,
                        kind: AttributeKind::CharacteristicDeclaration {
                            characteristic,
                            value_handle: Handle(self.next_handle),
                        },
                    });
                }
                (Step::Value, Some(characteristic)) => {
                    let slot = if characteristic.properties.is_subscribable() {
                        self.step = Step::Cccd;
                        Some(self.next_slot)
                    } else {
                        self.step = Step::Declaration;
                        self.characteristic += 1;
                        None
                    };
                    let handle = self.take_handle();
                    return Some(Attribute {
                        handle,
                        kind: AttributeKind::Value {
                            characteristic,
                            slot,
                        },
                    });
                }
                (Step::Cccd, Some(characteristic)) => {
                    let slot = self.next_slot;
                    self.next_slot = self.next_slot.wrapping_add(1);
                    self.step = Step::Declaration;
                    self.characteristic += 1;
                    let handle = self.take_handle();
                    return Some(Attribute {
                        handle,
                        kind: AttributeKind::Cccd {
                            characteristic,
                            value_handle: Handle(handle.0.wrapping_sub(1)),
                            slot,
                        },
                    });
                }
            }
        }
    }
}
