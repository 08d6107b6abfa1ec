//! The record log on the simulated NOR flash: what it stores comes back, in order, across
//! remounts; sequence numbers are never reused; wear is even; and a power cut at any byte of any
//! write or erase loses no committed record and shows no torn one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use core::ops::Range;

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use proptest::prelude::*;
use relais_board_sim::RamFlash;
use relais_board_sim::flash::{FlashError, InterruptedErase, PAGE_SIZE};
use relais_firmware::record_log::{
    Error, GeometryError, MAX_PAYLOAD_LEN, RecordLog, SequenceNumber, WhenFull,
};
use serde::{Deserialize, Serialize};

/// Three pages: a ring of two data pages and the one being recycled, small enough that every
/// cut point of a page change is tried in seconds.
const PAGES: usize = 3;
type Flash = RamFlash<PAGES>;
const REGION: Range<u32> = 0..(PAGES * PAGE_SIZE) as u32;
type Log<'f> = RecordLog<&'f mut Flash>;

/// A typed record, as a personality would store one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Reading {
    millivolts: i32,
    channel: u8,
    flags: [u8; 4],
}

fn reading(i: u32) -> Reading {
    Reading {
        millivolts: i as i32 * 7 - 100,
        channel: (i % 3) as u8,
        flags: [i as u8, 1, 2, 3],
    }
}

fn mount(flash: &mut Flash, policy: WhenFull) -> Log<'_> {
    RecordLog::mount(flash, REGION, policy).expect("mount")
}

/// Payload bytes that differ from record to record.
fn payload(tag: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (tag as usize * 31 + i * 7) as u8)
        .collect()
}

/// Every live record, oldest first, with its bytes; checks the log's own summary agrees.
fn contents(log: &mut Log<'_>) -> Vec<(SequenceNumber, Vec<u8>)> {
    let mut records = Vec::new();
    let mut buf = [0u8; MAX_PAYLOAD_LEN];
    log.for_each_payload_in(.., &mut buf, |seq, bytes| {
        records.push((seq, bytes.to_vec()));
        true
    })
    .unwrap();
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0), "in order");
    assert_eq!(log.count() as usize, records.len());
    assert_eq!(log.first(), records.first().map(|r| r.0));
    assert_eq!(log.last(), records.last().map(|r| r.0));
    records
}

fn seqs(records: &[(SequenceNumber, Vec<u8>)]) -> Vec<u32> {
    records.iter().map(|r| r.0.get()).collect()
}

/// Records of `len` payload bytes a page holds, found by appending until a second page opens.
fn records_per_page(len: usize) -> usize {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    for n in 0.. {
        log.append_bytes(&payload(n, len)).unwrap();
        if log.flash().total_erases() == 2 {
            return n as usize;
        }
    }
    unreachable!()
}

#[test]
fn appended_records_read_back_in_order_after_remount() {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    assert_eq!((log.count(), log.first(), log.last()), (0, None, None));
    let numbers: Vec<_> = (0..100).map(|i| log.append(&reading(i)).unwrap()).collect();

    let mut log = mount(&mut flash, WhenFull::Refuse);
    assert_eq!(log.count(), 100);
    assert_eq!(
        (log.first(), log.last()),
        (Some(numbers[0]), Some(numbers[99]))
    );
    let mut buf = [0u8; MAX_PAYLOAD_LEN];
    assert_eq!(log.read(numbers[42], &mut buf).unwrap(), Some(reading(42)));
    let all: Vec<_> = log.iter::<Reading>(&mut buf).map(|r| r.unwrap()).collect();
    let expected: Vec<_> = (0..100).map(|i| (numbers[i], reading(i as u32))).collect();
    assert_eq!(all, expected);
    assert_eq!(
        log.next_at_or_after::<Reading>(numbers[57].get(), &mut buf)
            .unwrap(),
        Some((numbers[57], reading(57)))
    );
    assert_eq!(
        log.next_at_or_after::<Reading>(numbers[99].get() + 1, &mut buf)
            .unwrap(),
        None
    );
    assert_eq!(
        log.count_in(numbers[10].get()..=numbers[19].get()).unwrap(),
        10
    );
    assert_eq!(flash.rewrites(), 0);
}

#[test]
fn deletions_are_logical_and_persist_across_remount() {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    let n: Vec<_> = (0..20).map(|i| log.append(&reading(i)).unwrap()).collect();
    assert!(log.delete(n[3]).unwrap());
    assert!(!log.delete(n[3]).unwrap(), "already deleted");
    assert_eq!(log.delete_through(n[5]).unwrap(), 5);
    assert_eq!(log.delete_in(n[15].get()..).unwrap(), 5);
    assert_eq!(log.delete_in(n[8].get()..=n[9].get()).unwrap(), 2);
    let mut buf = [0u8; MAX_PAYLOAD_LEN];
    assert_eq!(log.read::<Reading>(n[3], &mut buf).unwrap(), None);

    let mut log = mount(&mut flash, WhenFull::Refuse);
    let left: Vec<u32> = seqs(&contents(&mut log));
    let expected: Vec<u32> = [6, 7, 10, 11, 12, 13, 14]
        .iter()
        .map(|&i| n[i].get())
        .collect();
    assert_eq!(left, expected);
    assert_eq!((log.first(), log.last()), (Some(n[6]), Some(n[14])));
    assert_eq!(
        log.read::<Reading>(n[7], &mut buf).unwrap(),
        Some(reading(7))
    );
    assert_eq!(flash.rewrites(), 0, "a deletion mark is written once");
}

#[test]
fn sequence_numbers_strictly_increase_across_remounts_deletions_and_page_recycling() {
    for policy in [WhenFull::Refuse, WhenFull::DropOldest] {
        let mut flash = Flash::new();
        let mut issued: Vec<u32> = Vec::new();
        for round in 0..12u32 {
            let mut log = mount(&mut flash, policy);
            for i in 0..60 {
                let seq = log.append_bytes(&payload(round * 100 + i, 60)).unwrap();
                issued.push(seq.get());
            }
            // A gateway collects and deletes everything each round: pages recycle and the log
            // is empty at every remount.
            let last = log.last().unwrap();
            log.delete_through(last).unwrap();
            assert_eq!(log.count(), 0);
        }
        assert!(issued.windows(2).all(|w| w[0] < w[1]), "{policy:?}");
        assert!(
            flash.total_erases() > PAGES as u64 * 2,
            "every page recycled at least twice"
        );
        let mut log = mount(&mut flash, policy);
        let next = log.append(&reading(0)).unwrap();
        assert!(next.get() > *issued.last().unwrap());
    }
}

#[test]
fn refuses_to_append_when_full_and_makes_room_once_the_oldest_page_is_deleted() {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    let mut stored = Vec::new();
    let full = loop {
        match log.append_bytes(&payload(stored.len() as u32, 40)) {
            Ok(seq) => stored.push(seq),
            Err(e) => break e,
        }
    };
    assert_eq!(full, Error::Full);
    let before = contents(&mut log);
    assert_eq!(before.len(), stored.len());
    assert_eq!(log.append_bytes(&payload(0, 40)), Err(Error::Full));
    let mut log = mount(&mut flash, WhenFull::Refuse);
    assert_eq!(
        contents(&mut log),
        before,
        "a refused append changes nothing"
    );

    // Deleting all but the oldest record does not help: it holds its page.
    log.delete_in(stored[1].get()..).unwrap();
    assert_eq!(log.append_bytes(&payload(0, 40)), Err(Error::Full));
    log.delete(stored[0]).unwrap();
    let next = log.append_bytes(&payload(0, 40)).unwrap();
    assert!(next > *stored.last().unwrap());
    assert_eq!(seqs(&contents(&mut log)), vec![next.get()]);
}

#[test]
fn drop_oldest_policy_drops_the_oldest_page_to_make_room() {
    let per_page = records_per_page(40);
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::DropOldest);
    let stored: Vec<_> = (0..per_page * (PAGES - 1))
        .map(|i| log.append_bytes(&payload(i as u32, 40)).unwrap())
        .collect();
    assert_eq!(
        log.count() as usize,
        stored.len(),
        "the ring is exactly full"
    );
    let newest = log.append_bytes(&payload(999, 40)).unwrap();
    assert_eq!(log.first(), Some(stored[per_page]), "the oldest page went");
    assert_eq!(log.count() as usize, stored.len() - per_page + 1);
    assert_eq!(log.last(), Some(newest));
}

#[test]
fn wear_is_spread_evenly_over_the_pages() {
    const BIG: usize = 16;
    let mut flash = RamFlash::<BIG>::new();
    let region = 0..(BIG * PAGE_SIZE) as u32;
    let mut log = RecordLog::mount(&mut flash, region.clone(), WhenFull::Refuse).unwrap();
    for i in 0..17_000u32 {
        log.append_bytes(&payload(i, 60)).unwrap();
        // A gateway syncs every 50 measurements and deletes what it collected.
        if i % 50 == 49 {
            let last = log.last().unwrap();
            log.delete_through(last).unwrap();
        }
    }
    let erases = *flash.erase_counts();
    let (min, max) = (*erases.iter().min().unwrap(), *erases.iter().max().unwrap());
    println!("erases per page: {erases:?}");
    assert!(min >= 20, "{erases:?}");
    assert!(max - min <= 1, "ring order: {erases:?}");
    assert!(f64::from(max) / f64::from(min) <= 1.05, "{erases:?}");
    assert_eq!(flash.rewrites(), 0);
}

/// What an operation did when it ran to the end, and its cost in the power-cut budget unit.
struct Uncut {
    cost: usize,
    after: Vec<(SequenceNumber, Vec<u8>)>,
}

/// Runs `op` on a copy of `base` without a cut, then with the power cut after every byte count
/// from 0 to its cost; after each cut, reboots, remounts and hands the result of `op`, the
/// contents, and the remounted log to `check`.
fn at_every_cut<T: std::fmt::Debug>(
    base: &Flash,
    policy: WhenFull,
    op: impl Fn(&mut Log<'_>) -> Result<T, Error<FlashError>>,
    mut check: impl FnMut(&Uncut, usize, Result<T, Error<FlashError>>, &mut Log<'_>),
) -> Uncut {
    let mut whole = base.clone();
    let mut log = mount(&mut whole, policy);
    op(&mut log).expect("the uncut operation succeeds");
    let after = contents(&mut log);
    let cost = (whole.bytes_changed() - base.bytes_changed()) as usize;
    let uncut = Uncut { cost, after };
    for k in 0..=cost {
        let mut flash = base.clone();
        flash.cut_power_after(k);
        let outcome = op(&mut mount(&mut flash, policy));
        assert_eq!(
            outcome.is_ok(),
            k == cost,
            "cut after {k} of {cost} bytes: {outcome:?}"
        );
        flash.restore_power();
        let mut log = mount(&mut flash, policy);
        check(&uncut, k, outcome, &mut log);
        assert_eq!(log.flash().rewrites(), 0, "cut after {k}");
    }
    uncut
}

/// After a cut, the next append works, gets a number above every record stored before or
/// after the cut (`now`), and is stored.
fn next_append_is_fresh(
    log: &mut Log<'_>,
    stored_before: &[(SequenceNumber, Vec<u8>)],
    now: &[(SequenceNumber, Vec<u8>)],
    k: usize,
) {
    let seen = highest(stored_before).max(highest(now));
    let next = log
        .append_bytes(b"after the reboot")
        .unwrap_or_else(|e| panic!("cut after {k}: {e:?}"));
    assert!(
        seen.is_none_or(|s| next.get() > s),
        "cut after {k}: {next} after {seen:?}"
    );
    assert_eq!(
        (log.count() as usize, log.last()),
        (now.len() + 1, Some(next))
    );
    let mut buf = [0u8; MAX_PAYLOAD_LEN];
    assert_eq!(
        log.read_bytes(next, &mut buf).unwrap(),
        Some(&b"after the reboot"[..])
    );
}

/// A flash holding `records` records of `len` bytes, the first `deleted` of them deleted.
fn log_with(policy: WhenFull, records: usize, len: usize, deleted: usize) -> Flash {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, policy);
    let numbers: Vec<_> = (0..records)
        .map(|i| log.append_bytes(&payload(i as u32, len)).unwrap())
        .collect();
    if deleted > 0 {
        log.delete_through(numbers[deleted - 1]).unwrap();
    }
    flash
}

fn highest(records: &[(SequenceNumber, Vec<u8>)]) -> Option<u32> {
    records.last().map(|r| r.0.get())
}

#[test]
fn power_cut_at_every_byte_of_an_append_keeps_committed_records_and_drops_the_torn_one() {
    for (records, len) in [(0, 20), (5, 36), (30, MAX_PAYLOAD_LEN), (12, 0)] {
        let base = log_with(WhenFull::Refuse, records, len, 0);
        let before = contents(&mut mount(&mut base.clone(), WhenFull::Refuse));
        let new = payload(777, len);
        let uncut = at_every_cut(
            &base,
            WhenFull::Refuse,
            |log| log.append_bytes(&new),
            |uncut, k, outcome, log| {
                let now = contents(log);
                match outcome {
                    Ok(seq) => {
                        assert_eq!(now, uncut.after);
                        assert_eq!(now.last(), Some(&(seq, new.clone())));
                    }
                    Err(_) => assert_eq!(now, before, "cut after {k}: torn record absent"),
                }
                let erases = log.flash().total_erases();
                next_append_is_fresh(log, &before, &now, k);
                if records > 0 {
                    assert_eq!(
                        log.flash().total_erases(),
                        erases,
                        "the torn record's page goes on"
                    );
                }
            },
        );
        let first_page = if records == 0 { PAGE_SIZE } else { 0 };
        assert!(
            uncut.cost >= first_page + len + 8,
            "cut points cover the record"
        );
    }
}

#[test]
fn power_cut_at_every_byte_of_a_page_change_keeps_the_log_consistent() {
    let len = MAX_PAYLOAD_LEN;
    let per_page = records_per_page(len);
    let ring = per_page * (PAGES - 1);
    for order in [InterruptedErase::FromStart, InterruptedErase::FromEnd] {
        // Refuse: the oldest page is all deleted, so it may go; nothing live is lost.
        // DropOldest: the oldest page holds live records, dropped only once the new page
        // header commits.
        for (policy, deleted) in [(WhenFull::Refuse, per_page), (WhenFull::DropOldest, 0)] {
            let mut base = log_with(policy, ring, len, deleted);
            base.set_interrupted_erase(order);
            let before = contents(&mut mount(&mut base.clone(), policy));
            let new = payload(4242, len);
            let uncut = at_every_cut(
                &base,
                policy,
                |log| log.append_bytes(&new),
                |uncut, k, outcome, log| {
                    let now = contents(log);
                    let mut dropped_oldest = uncut.after.clone();
                    dropped_oldest.pop();
                    match outcome {
                        Ok(_) => assert_eq!(now, uncut.after),
                        Err(_) => assert!(
                            now == before || now == dropped_oldest,
                            "{order:?} {policy:?} cut after {k}: {:?}",
                            seqs(&now)
                        ),
                    }
                    next_append_is_fresh(log, &before, &now, k);
                },
            );
            assert!(uncut.cost > PAGE_SIZE, "the append changes page");
            let lost = before.len() + 1 - uncut.after.len();
            match policy {
                WhenFull::Refuse => assert_eq!(lost, 0),
                WhenFull::DropOldest => assert_eq!(lost, per_page),
            }
        }
    }
}

#[test]
fn power_cut_at_every_byte_of_a_deletion_deletes_the_oldest_targets_first() {
    let base = log_with(WhenFull::Refuse, 40, 24, 3);
    let before = contents(&mut mount(&mut base.clone(), WhenFull::Refuse));
    let (from, to) = (before[5].0.get(), before[20].0.get());
    let targets: Vec<u32> = (from..=to).collect();
    at_every_cut(
        &base,
        WhenFull::Refuse,
        |log| log.delete_in(from..=to),
        |_, k, outcome, log| {
            let now = contents(log);
            let left = seqs(&now);
            let gone: Vec<u32> = seqs(&before)
                .into_iter()
                .filter(|s| !left.contains(s))
                .collect();
            assert_eq!(gone, targets[..gone.len()], "cut after {k}");
            if outcome.is_ok() {
                assert_eq!(gone, targets);
            }
            next_append_is_fresh(log, &before, &now, k);
        },
    );
}

#[test]
fn a_damaged_record_is_skipped_counted_and_its_number_not_reused() {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    let n: Vec<_> = (0..5)
        .map(|i| log.append_bytes(&payload(i, 20)).unwrap())
        .collect();
    // Flip a payload bit of the newest record: the page header takes 20 bytes, a record of
    // 20 payload bytes 40 (8 header, 20 payload, 4 CRC, commit and deletion units).
    let last_payload = 20 + 4 * 40 + 8;
    let byte = flash.as_bytes()[0][last_payload];
    assert_eq!(byte, payload(4, 20)[0]);
    flash.corrupt(last_payload, &[byte ^ 0x10]);

    let mut log = mount(&mut flash, WhenFull::Refuse);
    assert_eq!(log.corrupt_records(), 1);
    assert_eq!(log.count(), 4);
    assert_eq!(log.last(), Some(n[3]));
    let mut buf = [0u8; MAX_PAYLOAD_LEN];
    assert_eq!(log.read_bytes(n[4], &mut buf).unwrap(), None);
    let next = log.append(&reading(9)).unwrap();
    assert!(next > n[4], "the damaged record's number stays spent");
}

#[test]
fn foreign_data_in_the_region_is_refused_as_a_corrupt_page() {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    log.append(&reading(1)).unwrap();
    flash.corrupt(2 * PAGE_SIZE + 100, b"not a log page");
    flash.corrupt(2 * PAGE_SIZE, &[0]);
    assert_eq!(
        RecordLog::mount(&mut flash, REGION, WhenFull::Refuse).err(),
        Some(Error::CorruptPage { page: 2 })
    );
    let mut flash = Flash::new();
    flash.corrupt(2 * PAGE_SIZE, &[0x12, 0x34]);
    assert_eq!(
        RecordLog::mount(&mut flash, REGION, WhenFull::Refuse).err(),
        Some(Error::CorruptPage { page: 2 })
    );
}

#[test]
fn regions_that_cannot_hold_a_log_are_refused() {
    let cases = [
        (0..PAGE_SIZE as u32, GeometryError::TooFewPages),
        (
            100..2 * PAGE_SIZE as u32,
            GeometryError::RangeNotPageAligned,
        ),
        (0..0, GeometryError::RangeNotPageAligned),
        (0..8 * PAGE_SIZE as u32, GeometryError::RangeOutOfFlash),
    ];
    for (range, expected) in cases {
        let mut flash = Flash::new();
        assert_eq!(
            RecordLog::mount(&mut flash, range.clone(), WhenFull::Refuse).err(),
            Some(Error::Geometry(expected)),
            "{range:?}"
        );
    }
    // Two pages in the middle of the flash work.
    let mut flash = Flash::new();
    let region = PAGE_SIZE as u32..3 * PAGE_SIZE as u32;
    let mut log = RecordLog::mount(&mut flash, region, WhenFull::Refuse).unwrap();
    log.append(&reading(1)).unwrap();
    assert_eq!(flash.erase_counts(), &[0, 1, 0]);
}

#[test]
fn oversized_records_small_buffers_and_wrong_types_are_errors() {
    let mut flash = Flash::new();
    let mut log = mount(&mut flash, WhenFull::Refuse);
    assert_eq!(
        log.append_bytes(&[0; MAX_PAYLOAD_LEN + 1]),
        Err(Error::RecordTooLarge {
            max: MAX_PAYLOAD_LEN
        })
    );
    assert_eq!(
        log.append(&[[u32::MAX; 32]; 2]),
        Err(Error::RecordTooLarge {
            max: MAX_PAYLOAD_LEN
        })
    );
    let seq = log.append_bytes(&[0; MAX_PAYLOAD_LEN]).unwrap();
    assert_eq!(
        log.read_bytes(seq, &mut [0; 10]),
        Err(Error::BufferTooSmall {
            needed: MAX_PAYLOAD_LEN
        })
    );
    let short = log.append_bytes(&[1]).unwrap();
    assert!(matches!(
        log.read::<Reading>(short, &mut [0; MAX_PAYLOAD_LEN]),
        Err(Error::Decode { .. })
    ));
    assert_eq!(log.count(), 2, "refused appends store nothing");
}

/// A flash that writes and reads 16 bytes at a time (as some STM32 parts do), over the
/// simulation, to show the format follows the write unit.
struct Wide<'f>(&'f mut Flash);

impl ErrorType for Wide<'_> {
    type Error = FlashError;
}

impl ReadNorFlash for Wide<'_> {
    const READ_SIZE: usize = 16;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        if !offset.is_multiple_of(16) || !bytes.len().is_multiple_of(16) {
            return Err(FlashError::NotAligned);
        }
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl NorFlash for Wide<'_> {
    const WRITE_SIZE: usize = 16;
    const ERASE_SIZE: usize = PAGE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        self.0.erase(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        if !offset.is_multiple_of(16) || !bytes.len().is_multiple_of(16) {
            return Err(FlashError::NotAligned);
        }
        self.0.write(offset, bytes)
    }
}

#[test]
fn works_on_flash_with_16_byte_write_units_even_when_cut() {
    let mut base = Flash::new();
    let mut log = RecordLog::mount(Wide(&mut base), REGION, WhenFull::Refuse).unwrap();
    let first: Vec<_> = (0..10).map(|i| log.append(&reading(i)).unwrap()).collect();
    let cost = {
        let mut probe = base.clone();
        let mut log = RecordLog::mount(Wide(&mut probe), REGION, WhenFull::Refuse).unwrap();
        log.append(&reading(10)).unwrap();
        (probe.bytes_changed() - base.bytes_changed()) as usize
    };
    assert_eq!(cost % 16, 0);
    for k in 0..cost {
        let mut flash = base.clone();
        flash.cut_power_after(k);
        let mut log = RecordLog::mount(Wide(&mut flash), REGION, WhenFull::Refuse).unwrap();
        assert!(log.append(&reading(10)).is_err());
        flash.restore_power();
        let mut log = RecordLog::mount(Wide(&mut flash), REGION, WhenFull::Refuse).unwrap();
        let mut buf = [0u8; MAX_PAYLOAD_LEN];
        let all: Vec<_> = log.iter::<Reading>(&mut buf).map(|r| r.unwrap()).collect();
        let expected: Vec<_> = (0..10).map(|i| (first[i], reading(i as u32))).collect();
        assert_eq!(all, expected, "cut after {k}");
        assert!(log.append(&reading(11)).unwrap() > first[9]);
    }
}

/// One operation of the random test; indices pick among the live records.
#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Delete(usize),
    DeleteThrough(usize),
    DeleteFrom(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..=MAX_PAYLOAD_LEN).prop_map(Op::Append),
        6 => (0usize..48).prop_map(Op::Append),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => any::<usize>().prop_map(Op::DeleteThrough),
        1 => any::<usize>().prop_map(Op::DeleteFrom),
    ]
}

/// A boot of the device: some operations on one mount, maybe cut short by a power cut.
#[derive(Debug, Clone)]
struct Boot {
    ops: Vec<Op>,
    cut_after: Option<usize>,
}

fn boot() -> impl Strategy<Value = Boot> {
    (
        proptest::collection::vec(op(), 1..6),
        prop_oneof![3 => Just(None), 1 => (0usize..6000).prop_map(Some)],
    )
        .prop_map(|(ops, cut_after)| Boot { ops, cut_after })
}

type Model = Vec<(SequenceNumber, Vec<u8>)>;

/// Applies one operation to the log and, when it succeeds, to the model. `Err` means the
/// power went.
fn apply(
    log: &mut Log<'_>,
    policy: WhenFull,
    model: &mut Model,
    highest: &mut Option<SequenceNumber>,
    tag: u32,
    op: &Op,
) -> Result<(), Error<FlashError>> {
    let pick = |i: usize| (!model.is_empty()).then(|| i % model.len());
    match *op {
        Op::Append(len) => {
            let bytes = payload(tag, len);
            let first_before = log.first();
            match log.append_bytes(&bytes) {
                Ok(seq) => {
                    assert!(highest.is_none_or(|h| seq > h), "fresh number");
                    *highest = Some(seq);
                    model.push((seq, bytes));
                    if policy == WhenFull::Refuse {
                        assert!(first_before.is_none() || log.first() == first_before);
                    }
                    // Page drops take the oldest records.
                    let first = log.first().unwrap();
                    model.retain(|r| r.0 >= first);
                }
                Err(Error::Full) => {
                    assert_eq!(policy, WhenFull::Refuse);
                    assert!(!model.is_empty(), "an empty log is never full");
                }
                Err(e) => return Err(e),
            }
        }
        Op::Delete(i) => {
            if let Some(i) = pick(i) {
                assert!(log.delete(model[i].0)?);
                model.remove(i);
            }
        }
        Op::DeleteThrough(i) => {
            if let Some(i) = pick(i) {
                assert_eq!(log.delete_through(model[i].0)?, i as u32 + 1);
                model.drain(..=i);
            }
        }
        Op::DeleteFrom(i) => {
            if let Some(i) = pick(i) {
                let n = model.len() - i;
                assert_eq!(log.delete_in(model[i].0.get()..)?, n as u32);
                model.truncate(i);
            }
        }
    }
    Ok(())
}

/// What the interrupted operation may have left, given the model before it.
fn allowed_after_cut(before: &Model, op: &Op, now: &Model, highest: Option<SequenceNumber>) {
    let now_seqs = seqs(now);
    match *op {
        Op::Append(_) => {
            // The torn record is absent; DropOldest may have dropped the oldest page.
            assert!(now.iter().all(|r| highest.is_none_or(|h| r.0 <= h)));
            assert!(
                before.ends_with(now),
                "{:?} -> {:?}",
                seqs(before),
                now_seqs
            );
        }
        Op::Delete(i) | Op::DeleteThrough(i) | Op::DeleteFrom(i) => {
            // Some of the targets, oldest first, are gone; nothing else is.
            assert!(now.iter().all(|r| before.contains(r)));
            let i = i % before.len().max(1);
            let targets: Vec<usize> = match *op {
                Op::Delete(_) => vec![i],
                Op::DeleteThrough(_) => (0..=i).collect(),
                _ => (i..before.len()).collect(),
            };
            let gone: Vec<usize> = (0..before.len())
                .filter(|&i| !now.contains(&before[i]))
                .collect();
            assert_eq!(gone, targets[..gone.len()], "{now_seqs:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_with_random_power_cuts_match_a_model(
        boots in proptest::collection::vec(boot(), 1..40),
        drop_oldest in any::<bool>(),
    ) {
        let policy = if drop_oldest { WhenFull::DropOldest } else { WhenFull::Refuse };
        let mut flash = Flash::new();
        let mut model: Model = Vec::new();
        let mut highest: Option<SequenceNumber> = None;
        let mut tag = 0u32;
        for boot in &boots {
            if let Some(k) = boot.cut_after {
                flash.cut_power_after(k);
            }
            let mut log = mount(&mut flash, policy);
            let mut cut = None;
            for op in &boot.ops {
                tag += 1;
                let before = model.clone();
                if apply(&mut log, policy, &mut model, &mut highest, tag, op).is_err() {
                    cut = Some((before, op.clone()));
                    break;
                }
            }
            flash.restore_power();
            let mut log = mount(&mut flash, policy);
            let now = contents(&mut log);
            match cut {
                None => prop_assert_eq!(&now, &model),
                Some((before, op)) => {
                    allowed_after_cut(&before, &op, &now, highest);
                    model = now;
                }
            }
            prop_assert_eq!(flash.rewrites(), 0);
        }
        // Whatever happened, the next number is fresh.
        let mut log = mount(&mut flash, policy);
        if let Ok(seq) = log.append_bytes(b"last") {
            prop_assert!(highest.is_none_or(|h| seq > h));
        }
    }
}
