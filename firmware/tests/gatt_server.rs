//! The GATT server core driven with plain events, as a BLE binding would drive it: the table
//! and its handles, reads and writes routed to the application, per-connection CCCDs, bonds,
//! indication flow control, the Current Time clock and every malformed write a central can send.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use relais_firmware::gatt::{
    Action, Actions, Application, AttError, AttributeKind, BondId, BondRecord, Cccd,
    Characteristic, CharacteristicRef, ConnId, DisconnectReason, Event, Handle,
    INDICATION_QUEUE_LEN, MAX_ATT_MTU, MAX_NOTIFICATION_LEN, Properties, ReadRequest, Recipients,
    SendError, Server, Service, SubscriptionChange, Table, TableError, Uuid, Value, WriteKind,
    WriteRequest,
};
use relais_firmware::gatt_table;
use relais_firmware::services::current_time::{self, DeviceClock};
use relais_firmware::services::device_information::{self, DeviceInformation};
use relais_protocol::Characteristic as _;
use relais_protocol::device_information::{
    FirmwareRevisionString, ManufacturerNameString, ModelNumberString, PnpId, SerialNumberString,
    SystemId, VendorIdSource,
};
use relais_protocol::time::{
    AdjustReason, CurrentTime, DateTime, DayDateTime, DayOfWeek, ExactTime256,
};

// --- The device under test: DIS, CTS, a measurement service and a vendor control service. ---

const INFO: DeviceInformation = DeviceInformation {
    manufacturer_name: "Relais Health Reference Devices",
    model_number: "RS-1",
    serial_number: "SN-000042",
    firmware_revision: "0.1.0",
    system_id: SystemId {
        manufacturer_identifier: 0x00_0000_0042,
        organizationally_unique_identifier: 0x00_1B_C5,
    },
    pnp_id: PnpId {
        vendor_id_source: VendorIdSource::BluetoothSig,
        vendor_id: 0x0059,
        product_id: 0x0001,
        product_version: 0x0100,
    },
};
const DIS_CHARACTERISTICS: [Characteristic; 6] = INFO.characteristics();

const FEATURE: [u8; 4] = 0x0000_0006u32.to_le_bytes();
const WEIGHT_SCALE_FEATURE: Uuid = Uuid::sig(0x2A9E);
const WEIGHT_MEASUREMENT: Uuid = Uuid::sig(0x2A9D);
const INTERMEDIATE_CUFF_PRESSURE: Uuid = Uuid::sig(0x2A36);
const BODY_COMPOSITION_MEASUREMENT: Uuid = Uuid::sig(0x2A9C);
const RACP: Uuid = Uuid::sig(0x2A52);
const USER_SETTING: Uuid = Uuid::vendor(0x6e40_0002_b5a3_f393_e0a9_e50e_24dc_ca9e);
const SECRET: Uuid = Uuid::vendor(0x6e40_0003_b5a3_f393_e0a9_e50e_24dc_ca9e);
const WRITE_ONLY: Uuid = Uuid::vendor(0x6e40_0004_b5a3_f393_e0a9_e50e_24dc_ca9e);
const CURRENT_TIME: Uuid = Uuid::sig(0x2A2B);

const MEASUREMENTS: Service = Service::primary(
    Uuid::sig(0x181D),
    &[
        Characteristic::new(WEIGHT_SCALE_FEATURE, Properties::READ).with_static_value(&FEATURE),
        Characteristic::new(WEIGHT_MEASUREMENT, Properties::INDICATE),
        Characteristic::new(INTERMEDIATE_CUFF_PRESSURE, Properties::NOTIFY),
        Characteristic::new(
            BODY_COMPOSITION_MEASUREMENT,
            Properties::NOTIFY.and(Properties::INDICATE),
        ),
    ],
);

const CONTROL: Service = Service::primary(
    Uuid::vendor(0x6e40_0001_b5a3_f393_e0a9_e50e_24dc_ca9e),
    &[
        Characteristic::new(
            USER_SETTING,
            Properties::READ
                .and(Properties::WRITE)
                .and(Properties::WRITE_WITHOUT_RESPONSE),
        ),
        Characteristic::new(RACP, Properties::WRITE.and(Properties::INDICATE))
            .as_control_point()
            .requiring_encryption(),
        Characteristic::new(SECRET, Properties::READ).requiring_encryption(),
        Characteristic::new(WRITE_ONLY, Properties::WRITE),
    ],
);

/// First handle after the stack's own GAP and GATT services.
const FIRST_HANDLE: u16 = 10;
const TABLE: Table = gatt_table!(
    FIRST_HANDLE,
    &[
        device_information::service(&DIS_CHARACTERISTICS),
        current_time::SERVICE,
        MEASUREMENTS,
        CONTROL,
    ]
);

const A: ConnId = ConnId(1);
const B: ConnId = ConnId(2);
const C: ConnId = ConnId(3);

fn handle_of(uuid: Uuid) -> Handle {
    TABLE.value_handle(uuid).unwrap()
}

fn cccd_of(uuid: Uuid) -> Handle {
    Handle(handle_of(uuid).0 + 1)
}

/// The device's application side: a writable setting, a secret, and a log of what reached it.
#[derive(Debug, Default)]
struct Device {
    setting: Vec<u8>,
    reads: Vec<ReadRequest>,
    writes: Vec<(ConnId, Handle, Uuid, Vec<u8>, WriteKind)>,
    changes: Vec<SubscriptionChange>,
    refuse_writes_with: Option<AttError>,
}

impl Application for Device {
    fn read(&mut self, request: &ReadRequest) -> Result<Value, AttError> {
        self.reads.push(*request);
        match request.uuid {
            u if u == USER_SETTING => Ok(Value::from_slice(&self.setting).unwrap()),
            u if u == SECRET => Ok(Value::from_slice(b"s3cret").unwrap()),
            _ => Err(AttError::UnlikelyError),
        }
    }

    fn write(&mut self, request: &WriteRequest<'_>) -> Result<(), AttError> {
        if let Some(error) = self.refuse_writes_with {
            return Err(error);
        }
        self.writes.push((
            request.conn,
            request.handle,
            request.uuid,
            request.data.to_vec(),
            request.kind,
        ));
        if request.uuid == USER_SETTING {
            self.setting = request.data.to_vec();
        }
        Ok(())
    }

    fn subscription_changed(&mut self, change: &SubscriptionChange) {
        self.changes.push(*change);
    }
}

/// A server, its application and the plumbing a binding would do.
struct Rig {
    server: Server<2, 4>,
    device: Device,
}

impl Rig {
    fn new() -> Self {
        Self {
            server: Server::new(TABLE),
            device: Device::default(),
        }
    }

    fn event(&mut self, event: Event<'_>) -> Actions {
        self.server.handle(event, &mut self.device)
    }

    fn connect(&mut self, conn: ConnId) -> &mut Self {
        assert!(self.event(Event::Connected { conn, bond: None }).is_empty());
        self
    }

    /// The single response an event produced.
    fn respond(&mut self, event: Event<'_>) -> Result<Vec<u8>, AttError> {
        let actions = self.event(event);
        let responses: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Respond { result, .. } => Some(result.clone().map(|v| v.to_vec())),
                _ => None,
            })
            .collect();
        assert_eq!(responses.len(), 1, "one response expected in {actions:?}");
        responses.into_iter().next().unwrap()
    }

    fn read(&mut self, conn: ConnId, handle: Handle) -> Result<Vec<u8>, AttError> {
        self.read_blob(conn, handle, 0)
    }

    fn read_blob(
        &mut self,
        conn: ConnId,
        handle: Handle,
        offset: u16,
    ) -> Result<Vec<u8>, AttError> {
        self.respond(Event::Read {
            conn,
            handle,
            offset,
        })
    }

    fn write(&mut self, conn: ConnId, handle: Handle, data: &[u8]) -> Result<(), AttError> {
        self.respond(Event::Write {
            conn,
            handle,
            data,
            kind: WriteKind::Request,
        })
        .map(|bytes| assert!(bytes.is_empty(), "a write response carries no value"))
    }

    fn subscribe(&mut self, conn: ConnId, characteristic: Uuid, value: u16) {
        self.write(conn, cccd_of(characteristic), &value.to_le_bytes())
            .unwrap();
    }
}

fn notify(conn: ConnId, uuid: Uuid, value: &[u8]) -> Action {
    Action::Notify {
        conn,
        handle: handle_of(uuid),
        value: Value::from_slice(value).unwrap(),
    }
}

fn indicate(conn: ConnId, uuid: Uuid, value: &[u8]) -> Action {
    Action::Indicate {
        conn,
        handle: handle_of(uuid),
        value: Value::from_slice(value).unwrap(),
    }
}

/// A Current Time value, built with the protocol's encoder.
fn current_time_bytes(date: (u16, u8, u8), time: (u8, u8, u8), day: DayOfWeek) -> [u8; 10] {
    let value = CurrentTime {
        exact_time_256: ExactTime256 {
            day_date_time: DayDateTime {
                date_time: DateTime::new(date.0, date.1, date.2, time.0, time.1, time.2).unwrap(),
                day_of_week: day,
            },
            fractions256: 128,
        },
        adjust_reason: AdjustReason {
            manual_time_update: true,
            ..AdjustReason::default()
        },
    };
    let mut out = [0; 10];
    assert_eq!(value.encode(&mut out).unwrap(), 10);
    out
}

// --- The table. ---

#[test]
fn the_table_gives_consecutive_handles_and_a_cccd_after_each_subscribable_value() {
    assert_eq!(TABLE.first_handle(), Handle(10));
    // DIS: 1 + 6 x 2; CTS: 1 + 3; measurements: 1 + 2 + 3 x 3; control: 1 + 3 + 2 + 2 + 2.
    assert_eq!(TABLE.last_handle(), Handle(10 + 13 + 4 + 12 + 10 - 1));
    assert_eq!(TABLE.subscribable_count(), 5);

    let attributes: Vec<_> = TABLE.attributes().collect();
    assert_eq!(attributes.len(), 39);
    for (i, attribute) in attributes.iter().enumerate() {
        assert_eq!(attribute.handle, Handle(10 + i as u16));
        assert_eq!(TABLE.attribute(attribute.handle), Some(*attribute));
    }
    assert_eq!(TABLE.attribute(Handle(9)), None);
    assert_eq!(TABLE.attribute(Handle(49)), None);

    // Weight Measurement: declaration 30, value 31, CCCD 32.
    assert_eq!(handle_of(WEIGHT_MEASUREMENT), Handle(31));
    assert_eq!(attributes[20].type_uuid(), Uuid::CHARACTERISTIC);
    assert_eq!(attributes[21].type_uuid(), WEIGHT_MEASUREMENT);
    assert_eq!(
        attributes[22].type_uuid(),
        Uuid::CLIENT_CHARACTERISTIC_CONFIGURATION
    );
    assert!(matches!(
        attributes[22].kind,
        AttributeKind::Cccd {
            value_handle: Handle(31),
            ..
        }
    ));
    // The feature has no CCCD: the next declaration follows its value.
    assert_eq!(handle_of(WEIGHT_SCALE_FEATURE), Handle(29));
    assert_eq!(attributes[20].handle, Handle(30));
}

#[test]
fn declarations_read_as_the_core_specification_lays_them_out() {
    let mut rig = Rig::new();
    rig.connect(A);
    // Primary service 0x181D at handle 27.
    assert_eq!(rig.read(A, Handle(27)), Ok(vec![0x1D, 0x18]));
    // Weight Measurement declaration: properties, value handle, UUID.
    assert_eq!(rig.read(A, Handle(30)), Ok(vec![0x20, 31, 0, 0x9D, 0x2A]));
    // A vendor service reads as its 128-bit UUID, little-endian.
    let vendor = rig.read(A, Handle(39)).unwrap();
    assert_eq!(
        vendor,
        0x6e40_0001_b5a3_f393_e0a9_e50e_24dc_ca9e_u128
            .to_le_bytes()
            .to_vec()
    );
    // A UUID on the Bluetooth base is the same as its 16-bit form.
    assert_eq!(
        Uuid::vendor(relais_protocol::uuid::to_u128(0x2A9D)),
        WEIGHT_MEASUREMENT
    );
}

#[test]
fn malformed_tables_are_refused_with_the_fault_named() {
    const WRITABLE_STATIC: Service = Service::primary(
        Uuid::sig(0x1800),
        &[
            Characteristic::new(Uuid::sig(0x2A00), Properties::READ.and(Properties::WRITE))
                .with_static_value(b"name"),
        ],
    );
    const BAD_CONTROL_POINT: Service = Service::primary(
        Uuid::sig(0x1808),
        &[Characteristic::new(RACP, Properties::WRITE).as_control_point()],
    );
    const NO_PROPERTY: Service = Service::primary(
        Uuid::sig(0x1808),
        &[Characteristic::new(RACP, Properties::NONE)],
    );
    const EMPTY: Service = Service::primary(Uuid::sig(0x1808), &[]);
    const MANY: [Characteristic; 17] =
        [Characteristic::new(WEIGHT_MEASUREMENT, Properties::INDICATE); 17];
    const TOO_MANY: Service = Service::primary(Uuid::sig(0x181D), &MANY);

    assert_eq!(
        Table::new(1, &[WRITABLE_STATIC]),
        Err(TableError::StaticValueWritable {
            characteristic: Uuid::sig(0x2A00)
        })
    );
    assert_eq!(
        Table::new(1, &[BAD_CONTROL_POINT]),
        Err(TableError::ControlPointNeedsWriteAndIndicate {
            characteristic: RACP
        })
    );
    assert_eq!(
        Table::new(1, &[NO_PROPERTY]),
        Err(TableError::NoProperties {
            characteristic: RACP
        })
    );
    assert_eq!(
        Table::new(1, &[EMPTY]),
        Err(TableError::EmptyService {
            service: Uuid::sig(0x1808)
        })
    );
    assert_eq!(
        Table::new(1, &[TOO_MANY]),
        Err(TableError::TooManySubscribable { count: 17 })
    );
    assert_eq!(
        Table::new(0, &[MEASUREMENTS]),
        Err(TableError::FirstHandleZero)
    );
    assert_eq!(Table::new(1, &[]), Err(TableError::NoServices));
    assert_eq!(
        Table::new(0xFFF8, &[MEASUREMENTS]),
        Err(TableError::HandlesExhausted)
    );
}

// --- Reads of static and built-in values. ---

#[test]
fn device_information_reads_back_through_the_protocol_decoders() {
    let mut rig = Rig::new();
    rig.connect(A).event(Event::Mtu {
        conn: A,
        mtu: MAX_ATT_MTU,
    });
    let read = |rig: &mut Rig, uuid: u16| rig.read(A, handle_of(Uuid::sig(uuid))).unwrap();

    let manufacturer = read(&mut rig, 0x2A29);
    assert_eq!(
        ManufacturerNameString::decode(&manufacturer)
            .unwrap()
            .value
            .as_str(),
        INFO.manufacturer_name
    );
    let model = read(&mut rig, 0x2A24);
    assert_eq!(
        ModelNumberString::decode(&model).unwrap().value.as_str(),
        "RS-1"
    );
    let serial = read(&mut rig, 0x2A25);
    assert_eq!(
        SerialNumberString::decode(&serial).unwrap().value.as_str(),
        "SN-000042"
    );
    let firmware = read(&mut rig, 0x2A26);
    assert_eq!(
        FirmwareRevisionString::decode(&firmware)
            .unwrap()
            .value
            .as_str(),
        "0.1.0"
    );

    // The served bytes are exactly the protocol encoders' output.
    let mut expected = [0u8; 256];
    let n = ManufacturerNameString::new(INFO.manufacturer_name)
        .unwrap()
        .encode(&mut expected)
        .unwrap();
    assert_eq!(manufacturer, &expected[..n]);
    let system_id = read(&mut rig, 0x2A23);
    let n = INFO.system_id.encode(&mut expected).unwrap();
    assert_eq!(system_id, &expected[..n]);
    assert_eq!(SystemId::decode(&system_id).unwrap().value, INFO.system_id);
    let pnp_id = read(&mut rig, 0x2A50);
    assert_eq!(pnp_id, vec![0x01, 0x59, 0x00, 0x01, 0x00, 0x00, 0x01]);
    assert_eq!(PnpId::decode(&pnp_id).unwrap().value, INFO.pnp_id);
}

#[test]
fn long_values_are_read_in_mtu_sized_pieces_with_read_blob() {
    let mut rig = Rig::new();
    rig.connect(A); // Default MTU 23: a Read Response carries 22 bytes.
    let handle = handle_of(Uuid::sig(0x2A29));
    let text = INFO.manufacturer_name.as_bytes();
    assert_eq!(text.len(), 31);
    assert_eq!(rig.read(A, handle).unwrap(), &text[..22]);
    assert_eq!(rig.read_blob(A, handle, 22).unwrap(), &text[22..]);
    assert_eq!(rig.read_blob(A, handle, 31).unwrap(), b"");
    assert_eq!(rig.read_blob(A, handle, 32), Err(AttError::InvalidOffset));
    // Static features come from the table without asking the application.
    assert_eq!(
        rig.read(A, handle_of(WEIGHT_SCALE_FEATURE)),
        Ok(FEATURE.to_vec())
    );
    assert!(rig.device.reads.is_empty());
}

// --- Routing to the application. ---

#[test]
fn reads_and_writes_of_dynamic_values_are_routed_to_the_application() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    let setting = handle_of(USER_SETTING);

    assert_eq!(rig.write(A, setting, &[7, 8, 9]), Ok(()));
    assert_eq!(
        rig.device.writes,
        vec![(A, setting, USER_SETTING, vec![7, 8, 9], WriteKind::Request)]
    );
    assert_eq!(rig.read(B, setting), Ok(vec![7, 8, 9]));
    assert_eq!(
        rig.device.reads,
        vec![ReadRequest {
            conn: B,
            handle: setting,
            uuid: USER_SETTING
        }]
    );
    // Offsets apply to the application's value too.
    assert_eq!(rig.read_blob(B, setting, 1), Ok(vec![8, 9]));

    // A Write Command reaches the application and gets no response.
    let actions = rig.event(Event::Write {
        conn: B,
        handle: setting,
        data: &[1],
        kind: WriteKind::Command,
    });
    assert!(actions.is_empty());
    assert_eq!(rig.device.setting, vec![1]);

    // The application's own errors go back to the client unchanged, and change nothing.
    let busy = AttError::ProcedureAlreadyInProgress;
    rig.device.refuse_writes_with = Some(busy);
    assert_eq!(rig.write(A, setting, &[5]), Err(busy));
    let ignored = AttError::from_code(0x80).unwrap();
    rig.device.refuse_writes_with = Some(ignored);
    assert_eq!(rig.write(A, setting, &[5]), Err(ignored));
    assert_eq!(rig.device.setting, vec![1]);
}

// --- CCCDs per connection. ---

#[test]
fn two_connections_keep_their_own_cccds() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    rig.subscribe(A, BODY_COMPOSITION_MEASUREMENT, 0x0001);
    rig.subscribe(B, BODY_COMPOSITION_MEASUREMENT, 0x0002);
    rig.subscribe(B, INTERMEDIATE_CUFF_PRESSURE, 0x0001);

    let bcm = cccd_of(BODY_COMPOSITION_MEASUREMENT);
    assert_eq!(rig.read(A, bcm), Ok(vec![0x01, 0x00]));
    assert_eq!(rig.read(B, bcm), Ok(vec![0x02, 0x00]));
    assert_eq!(
        rig.read(A, cccd_of(INTERMEDIATE_CUFF_PRESSURE)),
        Ok(vec![0, 0])
    );
    assert_eq!(
        rig.server.cccd(B, handle_of(BODY_COMPOSITION_MEASUREMENT)),
        Some(Cccd::INDICATIONS)
    );

    let value = [0x00, 0x00, 0x2C, 0x01];
    let notified = rig
        .server
        .notify(Recipients::All, BODY_COMPOSITION_MEASUREMENT, &value)
        .unwrap();
    assert_eq!(
        notified.to_vec(),
        vec![notify(A, BODY_COMPOSITION_MEASUREMENT, &value)]
    );
    let indicated = rig
        .server
        .indicate(Recipients::All, BODY_COMPOSITION_MEASUREMENT, &value)
        .unwrap();
    assert_eq!(
        indicated.to_vec(),
        vec![indicate(B, BODY_COMPOSITION_MEASUREMENT, &value)]
    );
    let cuff = rig
        .server
        .notify(Recipients::All, INTERMEDIATE_CUFF_PRESSURE, &value)
        .unwrap();
    assert_eq!(
        cuff.to_vec(),
        vec![notify(B, INTERMEDIATE_CUFF_PRESSURE, &value)]
    );

    // The application heard of each change, with the value handle.
    assert_eq!(rig.device.changes.len(), 3);
    assert_eq!(
        rig.device.changes[1],
        SubscriptionChange {
            conn: B,
            handle: handle_of(BODY_COMPOSITION_MEASUREMENT),
            uuid: BODY_COMPOSITION_MEASUREMENT,
            cccd: Cccd::INDICATIONS
        }
    );
}

#[test]
fn notifications_are_dropped_for_connections_that_did_not_subscribe() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    let actions = rig
        .server
        .notify(Recipients::All, INTERMEDIATE_CUFF_PRESSURE, &[1, 2])
        .unwrap();
    assert!(actions.is_empty());
    // Subscribed, then unsubscribed: nothing again.
    rig.subscribe(A, INTERMEDIATE_CUFF_PRESSURE, 0x0001);
    rig.subscribe(A, INTERMEDIATE_CUFF_PRESSURE, 0x0000);
    assert!(
        rig.server
            .notify(Recipients::All, INTERMEDIATE_CUFF_PRESSURE, &[1, 2])
            .unwrap()
            .is_empty()
    );
    // An indication to an unsubscribed connection is not queued either.
    assert!(
        rig.server
            .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[1, 2])
            .unwrap()
            .is_empty()
    );
    assert_eq!(rig.server.indications_pending(A), Some(0));
}

#[test]
fn sends_to_one_connection_reach_only_it() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    rig.subscribe(A, INTERMEDIATE_CUFF_PRESSURE, 0x0001);
    rig.subscribe(B, INTERMEDIATE_CUFF_PRESSURE, 0x0001);
    let actions = rig
        .server
        .notify(
            Recipients::Only(B),
            handle_of(INTERMEDIATE_CUFF_PRESSURE),
            &[3],
        )
        .unwrap();
    assert_eq!(
        actions.to_vec(),
        vec![notify(B, INTERMEDIATE_CUFF_PRESSURE, &[3])]
    );
    assert_eq!(
        rig.server
            .notify(Recipients::Only(C), INTERMEDIATE_CUFF_PRESSURE, &[3]),
        Err(SendError::NotConnected { conn: C })
    );
}

#[test]
fn sends_of_the_wrong_kind_or_to_unknown_characteristics_are_refused() {
    let mut rig = Rig::new();
    rig.connect(A);
    assert_eq!(
        rig.server.notify(Recipients::All, WEIGHT_MEASUREMENT, &[1]),
        Err(SendError::MissingProperty {
            handle: handle_of(WEIGHT_MEASUREMENT),
            property: Properties::NOTIFY
        })
    );
    assert_eq!(
        rig.server
            .indicate(Recipients::All, INTERMEDIATE_CUFF_PRESSURE, &[1]),
        Err(SendError::MissingProperty {
            handle: handle_of(INTERMEDIATE_CUFF_PRESSURE),
            property: Properties::INDICATE
        })
    );
    let unknown = Uuid::sig(0x2A37);
    assert_eq!(
        rig.server.notify(Recipients::All, unknown, &[1]),
        Err(SendError::UnknownCharacteristic(CharacteristicRef::Uuid(
            unknown
        )))
    );
    // A CCCD handle is not a characteristic value.
    let cccd = cccd_of(WEIGHT_MEASUREMENT);
    assert_eq!(
        rig.server.indicate(Recipients::All, cccd, &[1]),
        Err(SendError::UnknownCharacteristic(CharacteristicRef::Handle(
            cccd
        )))
    );
}

// --- Indication flow control. ---

#[test]
fn a_second_indication_waits_for_the_confirmation_of_the_first() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.subscribe(B, WEIGHT_MEASUREMENT, 0x0002);

    let first = rig
        .server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[1])
        .unwrap();
    assert_eq!(
        first.to_vec(),
        vec![
            indicate(A, WEIGHT_MEASUREMENT, &[1]),
            indicate(B, WEIGHT_MEASUREMENT, &[1])
        ]
    );
    // In flight on both: the second is queued, nothing goes out.
    let second = rig
        .server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[2])
        .unwrap();
    assert!(second.is_empty());
    assert_eq!(rig.server.indications_pending(A), Some(2));

    // A's confirmation releases A's second indication only.
    let released = rig.event(Event::IndicationConfirmed { conn: A });
    assert_eq!(
        released.to_vec(),
        vec![indicate(A, WEIGHT_MEASUREMENT, &[2])]
    );
    assert_eq!(rig.server.indications_pending(B), Some(2));
    let released = rig.event(Event::IndicationConfirmed { conn: B });
    assert_eq!(
        released.to_vec(),
        vec![indicate(B, WEIGHT_MEASUREMENT, &[2])]
    );
    // Last confirmations: queues empty, the next indication goes out at once.
    assert!(rig.event(Event::IndicationConfirmed { conn: A }).is_empty());
    assert!(rig.event(Event::IndicationConfirmed { conn: B }).is_empty());
    let third = rig
        .server
        .indicate(Recipients::Only(A), WEIGHT_MEASUREMENT, &[3])
        .unwrap();
    assert_eq!(third.to_vec(), vec![indicate(A, WEIGHT_MEASUREMENT, &[3])]);
    // A confirmation with nothing in flight is ignored.
    rig.event(Event::IndicationConfirmed { conn: A });
    assert!(rig.event(Event::IndicationConfirmed { conn: A }).is_empty());
}

#[test]
fn a_full_indication_queue_refuses_with_a_typed_error_and_changes_nothing() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.subscribe(B, WEIGHT_MEASUREMENT, 0x0002);
    // B is slow: fill its queue while A confirms everything.
    for i in 0..=INDICATION_QUEUE_LEN as u8 {
        rig.server
            .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[i])
            .unwrap();
        rig.event(Event::IndicationConfirmed { conn: A });
    }
    assert_eq!(rig.server.indications_pending(A), Some(0));
    assert_eq!(
        rig.server.indications_pending(B),
        Some(1 + INDICATION_QUEUE_LEN)
    );
    assert_eq!(
        rig.server
            .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[9]),
        Err(SendError::QueueFull { conn: B })
    );
    // All or nothing: A did not get it either.
    assert_eq!(rig.server.indications_pending(A), Some(0));
    // B's queue drains in order.
    for i in 1..=INDICATION_QUEUE_LEN as u8 {
        let next = rig.event(Event::IndicationConfirmed { conn: B });
        assert_eq!(next.to_vec(), vec![indicate(B, WEIGHT_MEASUREMENT, &[i])]);
    }
}

#[test]
fn disconnection_clears_the_indication_in_flight_and_the_queue() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[1])
        .unwrap();
    rig.server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[2])
        .unwrap();
    assert!(rig.event(Event::Disconnected { conn: A }).is_empty());
    assert_eq!(rig.server.indications_pending(A), None);
    // A late confirmation for the dead connection does nothing.
    assert!(rig.event(Event::IndicationConfirmed { conn: A }).is_empty());

    // The same handle reconnects (unbonded): its CCCD is off, then on again, and nothing old is
    // in the way.
    rig.connect(A);
    assert_eq!(rig.read(A, cccd_of(WEIGHT_MEASUREMENT)), Ok(vec![0, 0]));
    assert!(
        rig.server
            .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[3])
            .unwrap()
            .is_empty()
    );
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    let fresh = rig
        .server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[4])
        .unwrap();
    assert_eq!(fresh.to_vec(), vec![indicate(A, WEIGHT_MEASUREMENT, &[4])]);
}

#[test]
fn turning_indications_off_drops_what_was_queued() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[1])
        .unwrap();
    rig.server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[2])
        .unwrap();
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0000);
    assert_eq!(rig.server.indications_pending(A), Some(1)); // Only the one in flight.
    assert!(rig.event(Event::IndicationConfirmed { conn: A }).is_empty());
}

#[test]
fn an_indication_unconfirmed_for_30_seconds_closes_the_connection() {
    let mut rig = Rig::new();
    rig.event(Event::Tick { now_ms: 1_000 });
    rig.connect(A).connect(B);
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.subscribe(B, WEIGHT_MEASUREMENT, 0x0002);
    rig.server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[1])
        .unwrap();
    rig.event(Event::Tick { now_ms: 20_000 });
    rig.event(Event::IndicationConfirmed { conn: B });
    assert!(rig.event(Event::Tick { now_ms: 30_999 }).is_empty());
    assert_eq!(
        rig.event(Event::Tick { now_ms: 31_000 }).to_vec(),
        vec![Action::Disconnect {
            conn: A,
            reason: DisconnectReason::IndicationTimeout
        }]
    );
    // Asked once; and nothing more is sent on the dead bearer while the link goes down.
    assert!(rig.event(Event::Tick { now_ms: 40_000 }).is_empty());
    let later = rig
        .server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[2])
        .unwrap();
    assert_eq!(later.to_vec(), vec![indicate(B, WEIGHT_MEASUREMENT, &[2])]);
}

// --- MTU. ---

#[test]
fn values_longer_than_the_mtu_allows_are_refused_not_cut() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    rig.subscribe(A, INTERMEDIATE_CUFF_PRESSURE, 0x0001);
    rig.subscribe(B, INTERMEDIATE_CUFF_PRESSURE, 0x0001);
    let record = [0x5A; 30]; // A full Body Composition Measurement is 30 bytes.
    assert_eq!(rig.server.max_notification_len(A), Some(20));
    rig.event(Event::Mtu { conn: A, mtu: 247 }); // Clamped to what the server announced.
    assert_eq!(rig.server.mtu(A), Some(MAX_ATT_MTU));
    assert_eq!(
        rig.server
            .notify(Recipients::All, INTERMEDIATE_CUFF_PRESSURE, &record),
        Err(SendError::TooLongForMtu {
            conn: B,
            len: 30,
            max: 20
        })
    );
    rig.event(Event::Mtu { conn: B, mtu: 40 });
    let both = rig
        .server
        .notify(Recipients::All, INTERMEDIATE_CUFF_PRESSURE, &record)
        .unwrap();
    assert_eq!(both.len(), 2);
    // Nothing may exceed the largest MTU; and an MTU below the minimum is not believed.
    assert_eq!(
        rig.server.notify(
            Recipients::All,
            INTERMEDIATE_CUFF_PRESSURE,
            &[0; MAX_NOTIFICATION_LEN + 1]
        ),
        Err(SendError::TooLong {
            len: MAX_NOTIFICATION_LEN + 1,
            max: MAX_NOTIFICATION_LEN
        })
    );
    rig.event(Event::Mtu { conn: B, mtu: 5 });
    assert_eq!(rig.server.mtu(B), Some(23));
}

// --- Connections and bonds. ---

#[test]
fn connections_beyond_capacity_are_disconnected() {
    let mut rig = Rig::new();
    rig.connect(A).connect(B);
    assert_eq!(
        rig.event(Event::Connected {
            conn: C,
            bond: None
        })
        .to_vec(),
        vec![Action::Disconnect {
            conn: C,
            reason: DisconnectReason::TooManyConnections
        }]
    );
    assert_eq!(rig.server.connections().collect::<Vec<_>>(), vec![A, B]);
    // A request on a connection the server never accepted is refused.
    assert_eq!(
        rig.read(C, handle_of(WEIGHT_SCALE_FEATURE)),
        Err(AttError::UnlikelyError)
    );
}

#[test]
fn a_bonded_peer_gets_its_cccds_back_when_it_reconnects() {
    let mut rig = Rig::new();
    let bond = BondId(7);
    rig.connect(A);
    rig.event(Event::Bonded { conn: A, bond });
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.subscribe(A, INTERMEDIATE_CUFF_PRESSURE, 0x0001);
    rig.event(Event::Disconnected { conn: A });

    // An unbonded peer on the same handle starts with nothing.
    rig.connect(A);
    assert_eq!(rig.read(A, cccd_of(WEIGHT_MEASUREMENT)), Ok(vec![0, 0]));
    rig.event(Event::Disconnected { conn: A });

    // The bonded peer returns under another handle: its CCCDs are back before any write.
    rig.device.changes.clear();
    assert!(
        rig.event(Event::Connected {
            conn: B,
            bond: Some(bond)
        })
        .is_empty()
    );
    assert_eq!(
        rig.read(B, cccd_of(WEIGHT_MEASUREMENT)),
        Ok(vec![0x02, 0x00])
    );
    assert_eq!(
        rig.read(B, cccd_of(INTERMEDIATE_CUFF_PRESSURE)),
        Ok(vec![0x01, 0x00])
    );
    let restored: Vec<_> = rig
        .device
        .changes
        .iter()
        .map(|c| (c.conn, c.uuid, c.cccd))
        .collect();
    assert_eq!(
        restored,
        vec![
            (B, WEIGHT_MEASUREMENT, Cccd::INDICATIONS),
            (B, INTERMEDIATE_CUFF_PRESSURE, Cccd::NOTIFICATIONS)
        ]
    );
    let measurement = rig
        .server
        .indicate(Recipients::All, WEIGHT_MEASUREMENT, &[0x00, 0x10, 0x27])
        .unwrap();
    assert_eq!(
        measurement.to_vec(),
        vec![indicate(B, WEIGHT_MEASUREMENT, &[0x00, 0x10, 0x27])]
    );
}

#[test]
fn a_peer_recognised_only_when_it_encrypts_gets_its_cccds_back() {
    let mut rig = Rig::new();
    let bond = BondId(3);
    rig.connect(A);
    rig.subscribe(A, WEIGHT_MEASUREMENT, 0x0002);
    rig.event(Event::Bonded { conn: A, bond });
    rig.event(Event::Disconnected { conn: A });

    // Its resolvable address was not resolved at connection; encryption names the bond.
    rig.connect(B);
    assert_eq!(rig.read(B, cccd_of(WEIGHT_MEASUREMENT)), Ok(vec![0, 0]));
    rig.event(Event::Bonded { conn: B, bond });
    assert_eq!(
        rig.read(B, cccd_of(WEIGHT_MEASUREMENT)),
        Ok(vec![0x02, 0x00])
    );
}

#[test]
fn bond_records_persist_through_postcard_into_a_fresh_server() {
    let mut rig = Rig::new();
    let generation = rig.server.bonds_generation();
    rig.connect(A);
    rig.event(Event::Bonded {
        conn: A,
        bond: BondId(1),
    });
    rig.subscribe(A, BODY_COMPOSITION_MEASUREMENT, 0x0003);
    assert_ne!(rig.server.bonds_generation(), generation);

    // What a board writes to flash and reads back at boot.
    let mut flash = [0u8; 64];
    let mut stored = Vec::new();
    for record in rig.server.bond_records() {
        let bytes = postcard::to_slice(record, &mut flash).unwrap();
        stored.push(postcard::from_bytes::<BondRecord>(bytes).unwrap());
    }
    assert_eq!(stored.len(), 1);

    let mut rebooted = Rig::new();
    rebooted.server.restore_bonds(&stored);
    rebooted.event(Event::Connected {
        conn: B,
        bond: Some(BondId(1)),
    });
    assert_eq!(
        rebooted.read(B, cccd_of(BODY_COMPOSITION_MEASUREMENT)),
        Ok(vec![0x03, 0x00])
    );
    // A bond the stack deleted is forgotten.
    rebooted.server.forget_bond(BondId(1));
    assert!(rebooted.server.bond_records().is_empty());
}

#[test]
fn the_stalest_bond_makes_room_when_the_store_is_full() {
    let mut server: Server<1, 2> = Server::new(TABLE);
    let mut device = Device::default();
    for bond in 1..=3 {
        let conn = ConnId(bond);
        server.handle(Event::Connected { conn, bond: None }, &mut device);
        server.handle(
            Event::Bonded {
                conn,
                bond: BondId(bond),
            },
            &mut device,
        );
        server.handle(Event::Disconnected { conn }, &mut device);
    }
    let bonds: Vec<_> = server.bond_records().iter().map(|r| r.bond).collect();
    assert_eq!(bonds, vec![BondId(2), BondId(3)]);
}

// --- Security. ---

#[test]
fn encrypted_characteristics_need_an_encrypted_link_with_a_bond() {
    let mut rig = Rig::new();
    let secret = handle_of(SECRET);
    // No bond: the client should pair.
    rig.connect(A);
    assert_eq!(
        rig.read(A, secret),
        Err(AttError::InsufficientAuthentication)
    );
    assert_eq!(
        rig.write(A, cccd_of(RACP), &[0x02, 0x00]),
        Err(AttError::InsufficientAuthentication)
    );
    // A known bond that has not encrypted yet: it should encrypt.
    rig.event(Event::Connected {
        conn: B,
        bond: Some(BondId(9)),
    });
    assert_eq!(rig.read(B, secret), Err(AttError::InsufficientEncryption));
    // Encrypted: open.
    rig.event(Event::Bonded {
        conn: A,
        bond: BondId(8),
    });
    rig.event(Event::Bonded {
        conn: B,
        bond: BondId(9),
    });
    assert_eq!(rig.read(A, secret), Ok(b"s3cret".to_vec()));
    assert_eq!(rig.read(B, secret), Ok(b"s3cret".to_vec()));
}

#[test]
fn nothing_encrypted_is_sent_to_a_link_that_is_not_encrypted_yet() {
    let mut rig = Rig::new();
    let bond = BondId(4);
    rig.connect(A);
    rig.event(Event::Bonded { conn: A, bond });
    rig.subscribe(A, RACP, 0x0002);
    rig.event(Event::Disconnected { conn: A });
    rig.event(Event::Connected {
        conn: A,
        bond: Some(bond),
    });
    // Restored, but the link is not encrypted yet.
    assert!(
        rig.server
            .indicate(Recipients::All, RACP, &[0x06, 0x00, 0x01, 0x01])
            .unwrap()
            .is_empty()
    );
    rig.event(Event::Bonded { conn: A, bond });
    let answer = rig
        .server
        .indicate(Recipients::All, RACP, &[0x06, 0x00, 0x01, 0x01])
        .unwrap();
    assert_eq!(
        answer.to_vec(),
        vec![indicate(A, RACP, &[0x06, 0x00, 0x01, 0x01])]
    );
}

#[test]
fn a_control_point_written_without_its_indications_is_refused_with_0xfd() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.event(Event::Bonded {
        conn: A,
        bond: BondId(1),
    });
    let racp = handle_of(RACP);
    let report_all = [0x01, 0x01];
    assert_eq!(
        rig.write(A, racp, &report_all),
        Err(AttError::CccdImproperlyConfigured)
    );
    assert_eq!(AttError::CccdImproperlyConfigured.code(), 0xFD);
    assert!(rig.device.writes.is_empty());
    rig.subscribe(A, RACP, 0x0002);
    assert_eq!(rig.write(A, racp, &report_all), Ok(()));
    assert_eq!(rig.device.writes.len(), 1);
}

// --- Bad input from a central: the right error, and nothing changes. ---

#[test]
fn malformed_cccd_writes_are_refused_and_change_nothing() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.subscribe(A, BODY_COMPOSITION_MEASUREMENT, 0x0001);
    let wm = cccd_of(WEIGHT_MEASUREMENT);
    let icp = cccd_of(INTERMEDIATE_CUFF_PRESSURE);
    let bcm = cccd_of(BODY_COMPOSITION_MEASUREMENT);
    rig.device.changes.clear();

    let cases: &[(Handle, &[u8], AttError)] = &[
        (wm, &[], AttError::InvalidAttributeValueLength),
        (wm, &[0x02], AttError::InvalidAttributeValueLength),
        (
            wm,
            &[0x02, 0x00, 0x00],
            AttError::InvalidAttributeValueLength,
        ),
        // Notifications on an indicate-only characteristic, and the reverse.
        (wm, &[0x01, 0x00], AttError::ValueNotAllowed),
        (icp, &[0x02, 0x00], AttError::ValueNotAllowed),
        (wm, &[0x03, 0x00], AttError::ValueNotAllowed),
        // Reserved bits.
        (bcm, &[0x04, 0x00], AttError::ValueNotAllowed),
        (bcm, &[0x00, 0x01], AttError::ValueNotAllowed),
        (bcm, &[0xFF, 0xFF], AttError::ValueNotAllowed),
    ];
    for &(handle, data, error) in cases {
        assert_eq!(
            rig.write(A, handle, data),
            Err(error),
            "{data:02X?} to {handle:?}"
        );
        assert_eq!(
            error.code(),
            if error == AttError::ValueNotAllowed {
                0x13
            } else {
                0x0D
            }
        );
    }
    assert_eq!(rig.read(A, wm), Ok(vec![0, 0]));
    assert_eq!(rig.read(A, icp), Ok(vec![0, 0]));
    assert_eq!(rig.read(A, bcm), Ok(vec![0x01, 0x00]));
    assert!(rig.device.changes.is_empty());
    // Both bits at once where both are supported is a valid configuration.
    assert_eq!(rig.write(A, bcm, &[0x03, 0x00]), Ok(()));
    assert_eq!(rig.read(A, bcm), Ok(vec![0x03, 0x00]));
}

#[test]
fn malformed_reads_and_writes_get_the_right_att_error_and_change_nothing() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.write(A, handle_of(USER_SETTING), &[1, 2]).unwrap();
    rig.device.writes.clear();

    let feature = handle_of(WEIGHT_SCALE_FEATURE);
    let cases: &[(Handle, WriteKind, AttError)] = &[
        (Handle(0), WriteKind::Request, AttError::InvalidHandle),
        (Handle(9), WriteKind::Request, AttError::InvalidHandle),
        (Handle(0xFFFF), WriteKind::Request, AttError::InvalidHandle),
        // A read-only static value, a service declaration, a characteristic declaration.
        (feature, WriteKind::Request, AttError::WriteNotPermitted),
        (Handle(27), WriteKind::Request, AttError::WriteNotPermitted),
        (Handle(28), WriteKind::Request, AttError::WriteNotPermitted),
        // Indicate-only and read-only application values.
        (
            handle_of(WEIGHT_MEASUREMENT),
            WriteKind::Request,
            AttError::WriteNotPermitted,
        ),
        (
            handle_of(SECRET),
            WriteKind::Request,
            AttError::WriteNotPermitted,
        ),
        // Read-only DIS values served by the core.
        (
            handle_of(Uuid::sig(0x2A50)),
            WriteKind::Request,
            AttError::WriteNotPermitted,
        ),
    ];
    for &(handle, kind, error) in cases {
        let result = rig.respond(Event::Write {
            conn: A,
            handle,
            data: &[0x01],
            kind,
        });
        assert_eq!(result, Err(error), "write to {handle:?}");
    }
    assert_eq!(rig.read(A, feature), Ok(FEATURE.to_vec()));

    // Write Command to a characteristic without write-without-response: dropped, no answer.
    let write_only = handle_of(WRITE_ONLY);
    let silent = rig.event(Event::Write {
        conn: A,
        handle: write_only,
        data: &[1],
        kind: WriteKind::Command,
    });
    assert!(silent.is_empty());
    // A Write Command to an unknown handle is dropped silently too.
    assert!(
        rig.event(Event::Write {
            conn: A,
            handle: Handle(0),
            data: &[1],
            kind: WriteKind::Command,
        })
        .is_empty()
    );
    assert!(rig.device.writes.is_empty());
    assert_eq!(rig.read(A, handle_of(USER_SETTING)), Ok(vec![1, 2]));

    // Reads: unknown handle, not readable, offset past the end.
    assert_eq!(rig.read(A, Handle(0)), Err(AttError::InvalidHandle));
    assert_eq!(rig.read(A, Handle(49)), Err(AttError::InvalidHandle));
    assert_eq!(
        rig.read(A, handle_of(WEIGHT_MEASUREMENT)),
        Err(AttError::ReadNotPermitted)
    );
    assert_eq!(rig.read(A, write_only), Err(AttError::ReadNotPermitted));
    assert_eq!(rig.read_blob(A, feature, 5), Err(AttError::InvalidOffset));
    assert_eq!(rig.read_blob(A, feature, 4), Ok(vec![]));
}

// --- Current Time. ---

#[test]
fn an_unset_clock_reads_as_not_known_and_gives_no_time_stamp() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.event(Event::Tick { now_ms: 123_456 });
    let bytes = rig.read(A, handle_of(CURRENT_TIME)).unwrap();
    assert_eq!(bytes, vec![0; 10]);
    let decoded = CurrentTime::decode(&bytes).unwrap().value;
    assert_eq!(decoded.date_time().year, None);
    assert_eq!(
        decoded.exact_time_256.day_date_time.day_of_week,
        DayOfWeek::Unknown
    );
    assert_eq!(rig.server.now(), None);
    assert!(!rig.server.clock().is_set());
}

#[test]
fn a_current_time_write_sets_the_clock_which_then_runs_with_the_ticks() {
    let mut rig = Rig::new();
    rig.event(Event::Tick { now_ms: 5_000 });
    rig.connect(A).connect(B);
    rig.subscribe(A, CURRENT_TIME, 0x0001);
    rig.subscribe(B, CURRENT_TIME, 0x0001);
    let handle = handle_of(CURRENT_TIME);

    // Thursday 14 May 2026, 23:59:30 and a half.
    let written = current_time_bytes((2026, 5, 14), (23, 59, 30), DayOfWeek::Thursday);
    let actions = rig.event(Event::Write {
        conn: A,
        handle,
        data: &written,
        kind: WriteKind::Request,
    });
    // A is answered; B, also subscribed, hears of the new time; A (the writer) does not.
    assert_eq!(
        actions.to_vec(),
        vec![
            Action::Respond {
                conn: A,
                result: Ok(Value::new())
            },
            notify(B, CURRENT_TIME, &written)
        ]
    );
    assert_eq!(rig.read(B, handle), Ok(written.to_vec()));

    // 45 s later it is Friday.
    rig.event(Event::Tick { now_ms: 50_000 });
    let read = rig.read(A, handle).unwrap();
    let time = CurrentTime::decode(&read).unwrap().value;
    assert_eq!(
        *time.date_time(),
        DateTime::new(2026, 5, 15, 0, 0, 15).unwrap()
    );
    assert_eq!(
        time.exact_time_256.day_date_time.day_of_week,
        DayOfWeek::Friday
    );
    assert_eq!(time.exact_time_256.fractions256, 128);
    assert!(time.adjust_reason.manual_time_update);
    assert_eq!(
        rig.server.now(),
        Some(DateTime::new(2026, 5, 15, 0, 0, 15).unwrap())
    );
    // 2026-05-15 is day 9631 after 2000-01-01.
    assert_eq!(
        rig.server.clock().seconds_since_epoch(),
        Some(9631 * 86_400 + 15)
    );
    // A day of week of 0 ("not known") is accepted.
    let unknown_day = current_time_bytes((2030, 1, 1), (8, 0, 0), DayOfWeek::Unknown);
    assert_eq!(rig.write(B, handle, &unknown_day), Ok(()));
    assert_eq!(
        rig.server.now(),
        Some(DateTime::new(2030, 1, 1, 8, 0, 0).unwrap())
    );
}

#[test]
fn impossible_current_times_are_refused_and_leave_the_clock_alone() {
    let mut rig = Rig::new();
    rig.connect(A);
    let handle = handle_of(CURRENT_TIME);
    let good = current_time_bytes((2024, 2, 28), (12, 0, 0), DayOfWeek::Wednesday);
    rig.write(A, handle, &good).unwrap();

    let with = |index: usize, value: u8| {
        let mut bytes = good;
        bytes[index] = value;
        bytes.to_vec()
    };
    let with_year = |year: u16| {
        let mut bytes = good;
        bytes[..2].copy_from_slice(&year.to_le_bytes());
        bytes.to_vec()
    };
    let out_of_range: Vec<(&str, Vec<u8>)> = vec![
        ("month 13", with(2, 13)),
        ("30 February", with(3, 30)),
        ("29 February 2023", {
            let mut bytes = with_year(2023);
            bytes[3] = 29;
            bytes
        }),
        ("hour 24", with(4, 24)),
        ("minute 60", with(5, 60)),
        ("second 60", with(6, 60)),
        ("day of week 8", with(7, 8)),
        ("a Monday that is a Wednesday", with(7, 1)),
        ("year not known", with_year(0)),
        ("month not known", with(2, 0)),
        ("day not known", with(3, 0)),
        ("year before the epoch", with_year(1999)),
        ("year past the clock", with_year(2136)),
        ("year past the format", with_year(10_000)),
    ];
    for (what, bytes) in &out_of_range {
        assert_eq!(
            rig.write(A, handle, bytes),
            Err(AttError::OutOfRange),
            "{what}"
        );
        assert_eq!(
            rig.read(A, handle),
            Ok(good.to_vec()),
            "{what} changed the clock"
        );
    }
    for len in [0, 7, 9, 11] {
        let mut bytes = good.to_vec();
        bytes.resize(len, 0);
        assert_eq!(
            rig.write(A, handle, &bytes),
            Err(AttError::InvalidAttributeValueLength),
            "{len} bytes"
        );
    }
    assert_eq!(rig.read(A, handle), Ok(good.to_vec()));
    // The same checks hold for a clock that was never set: it stays unset.
    let mut fresh = Rig::new();
    fresh.connect(A);
    assert_eq!(
        fresh.write(A, handle, &with(2, 13)),
        Err(AttError::OutOfRange)
    );
    assert_eq!(fresh.server.now(), None);
}

#[test]
fn the_board_can_set_the_clock_and_subscribers_hear_of_it() {
    let mut rig = Rig::new();
    rig.connect(A);
    rig.subscribe(A, CURRENT_TIME, 0x0001);
    let bytes = current_time_bytes((2025, 12, 31), (23, 59, 59), DayOfWeek::Wednesday);
    let time = CurrentTime::decode(&bytes).unwrap().value;
    let actions = rig.server.set_time(&time).unwrap();
    assert_eq!(actions.to_vec(), vec![notify(A, CURRENT_TIME, &bytes)]);

    // The clock on its own, as a personality would hold it.
    let mut clock = DeviceClock::new();
    clock.tick(1_000);
    assert_eq!(clock.now(), None);
    clock.set(&time).unwrap();
    clock.tick(1_500); // Half a second later the clock shows midnight.
    assert_eq!(
        clock.now(),
        Some(DateTime::new(2026, 1, 1, 0, 0, 0).unwrap())
    );
    clock.tick(400); // Board time does not run backwards.
    assert_eq!(clock.uptime_ms(), 1_500);
}

// --- ATT codes. ---

#[test]
fn every_att_error_has_its_specified_code() {
    let codes = [
        (AttError::InvalidHandle, 0x01),
        (AttError::ReadNotPermitted, 0x02),
        (AttError::WriteNotPermitted, 0x03),
        (AttError::InsufficientAuthentication, 0x05),
        (AttError::RequestNotSupported, 0x06),
        (AttError::InvalidOffset, 0x07),
        (AttError::InvalidAttributeValueLength, 0x0D),
        (AttError::UnlikelyError, 0x0E),
        (AttError::InsufficientEncryption, 0x0F),
        (AttError::ValueNotAllowed, 0x13),
        (AttError::WriteRequestRejected, 0xFC),
        (AttError::CccdImproperlyConfigured, 0xFD),
        (AttError::ProcedureAlreadyInProgress, 0xFE),
        (AttError::OutOfRange, 0xFF),
    ];
    for (error, code) in codes {
        assert_eq!(error.code(), code);
        assert_eq!(AttError::from_code(code), Some(error));
    }
    for code in 0x80..=0x9F {
        assert_eq!(AttError::from_code(code).unwrap().code(), code);
    }
    assert_eq!(AttError::from_code(0x04), None);
    assert_eq!(AttError::from_code(0xA0), None);
    assert_eq!(AttError::from_code(0x00), None);
}
