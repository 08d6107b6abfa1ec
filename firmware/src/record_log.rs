//! A power-loss-safe, append-only log of records in NOR flash: the stored measurements of a
//! health device, which must survive the battery being pulled at any instant.
//!
//! The log owns a region of whole flash pages used as a ring. Each record is postcard-encoded,
//! gets a [`SequenceNumber`] that is never reused, and counts only once its commit mark, written
//! last, reads back; so after a power cut at any byte of any write or erase, [`RecordLog::mount`]
//! finds every record committed before the cut and nothing torn. Deletion is logical (a mark per
//! record); pages are erased one at a time, in ring order, so wear is even. The on-flash format is
//! in [`format`]; the guarantees and what is not guaranteed are in `docs/record-log.md`.
//!
//! Only plain [`NorFlash`] is needed: no word is ever written twice between erases, so the log
//! also runs on flash with ECC. No allocation; the caller provides the read buffers.

mod format;

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Bound, Range, RangeBounds};

use embedded_storage::nor_flash::NorFlash;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use format::MAX_PAYLOAD_LEN;
use format::{
    COMMIT, CRC, CRC_LEN, ERASED, Geometry, MAX_UNIT, MIN_UNIT, PAGE_HEADER_LEN, PageHeader,
    RECORD_HEADER_LEN, RecordHeader,
};

/// The number of a record, unique over the life of the log: strictly increasing, never reused,
/// not even after its record is deleted or its page erased.
///
/// Only the log mints these (no constructor, no `Deserialize`), so holding one proves the log
/// handed it out. Selections by raw number (`u32` ranges) exist for protocols whose clients send
/// numbers, such as RACP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SequenceNumber(u32);

impl SequenceNumber {
    /// The number, for the wire or a log line.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What `append` does when the ring has no free page and its oldest page still holds records
/// that were not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Fail with [`Error::Full`] and change nothing: a measurement nobody has collected yet is
    /// never destroyed silently. The choice for a medical device.
    Refuse,
    /// Erase the oldest page, dropping its records, like a data logger's ring buffer.
    DropOldest,
}

/// Why the flash or the region given to [`RecordLog::mount`] cannot hold a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryError {
    /// The region does not start and end on erase-page boundaries, or is empty.
    RangeNotPageAligned,
    /// The region ends beyond the flash.
    RangeOutOfFlash,
    /// The region has fewer than 2 pages: the ring needs one page to erase while another holds
    /// the records.
    TooFewPages,
    /// Write size above 32 bytes or not a power of two, or a read size the write unit is not a
    /// multiple of.
    UnsupportedAccessSize,
    /// Erase pages not a multiple of 32 bytes, or too small for one record of
    /// [`MAX_PAYLOAD_LEN`].
    UnsupportedPageSize,
}

/// What went wrong, with the flash driver's own error kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// The flash failed (or, in the simulation, lost power); the operation may be half done,
    /// which the format tolerates: remount to see what stuck.
    Flash(E),
    /// The flash or region cannot hold a log.
    Geometry(GeometryError),
    /// A page in the ring holds something that is neither a valid page of this log nor erased
    /// flash, in a place where no power cut can leave one: foreign data or damage. Mount refuses
    /// rather than guess; erase the region to start a new log (its sequence numbers restart).
    CorruptPage {
        /// Page index within the region.
        page: u32,
    },
    /// The record encodes to more than [`MAX_PAYLOAD_LEN`] bytes.
    RecordTooLarge {
        /// The limit.
        max: usize,
    },
    /// postcard could not encode the record.
    Encode(postcard::Error),
    /// The stored bytes do not decode as the type asked for.
    Decode {
        /// The record that did not decode.
        sequence_number: u32,
        /// postcard's reason.
        error: postcard::Error,
    },
    /// The read buffer is shorter than the record's payload.
    BufferTooSmall {
        /// Payload length of the record.
        needed: usize,
    },
    /// No free page and the oldest page holds live records, under [`WhenFull::Refuse`]. Delete
    /// records to make room.
    Full,
    /// The u32 sequence numbers (or page epochs) are used up: 4 billion records.
    SequenceNumbersExhausted,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flash(e) => write!(f, "flash error: {e:?}"),
            Self::Geometry(e) => write!(f, "unsupported flash geometry: {e:?}"),
            Self::CorruptPage { page } => write!(f, "page {page} is neither a log page nor erased"),
            Self::RecordTooLarge { max } => write!(f, "record encodes to more than {max} bytes"),
            Self::Encode(e) => write!(f, "record does not encode: {e}"),
            Self::Decode {
                sequence_number,
                error,
            } => write!(f, "record #{sequence_number} does not decode: {error}"),
            Self::BufferTooSmall { needed } => write!(f, "read buffer under {needed} bytes"),
            Self::Full => f.write_str("record log full"),
            Self::SequenceNumbersExhausted => f.write_str("sequence numbers used up"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// A page of the region as mount sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageState {
    /// Header complete and committed.
    Valid(PageHeader),
    /// Header area erased: never used since its last erase.
    Blank,
    /// Anything else: torn header, interrupted erase, foreign data.
    Other,
}

/// The most recently opened page: the one appends go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Newest {
    slot: u32,
    header: PageHeader,
}

/// A committed record found in flash (its CRC not yet checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordMeta {
    header: RecordHeader,
    /// Flash offset of the record.
    start: u32,
    /// Offset within its page of whatever follows it.
    next: u32,
    deleted: bool,
}

/// What is at an offset of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Record(RecordMeta),
    /// Erased: the end of the records, and where the next one could go.
    Blank,
    /// Written but not a committed record: an append torn by a power cut. The next record can
    /// only start at `next`: past the torn one's length if its header is whole, else past the
    /// longest record (no append writes further than that).
    Torn {
        next: u32,
    },
    /// Too close to the end of the page for any record.
    End,
}

/// A position in the ring: page by age (0 = oldest), and offset in that page (`None` = at its
/// header, not yet read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    age: u32,
    offset: Option<u32>,
}

/// Live records at the last scan: committed, CRC intact, not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Summary {
    count: u32,
    first: Option<u32>,
    last: Option<u32>,
    /// Committed records whose CRC fails: damaged after they were written.
    corrupt: u32,
}

/// The log. `F` is the whole flash; the log touches only the region given to `mount`.
#[derive(Debug)]
pub struct RecordLog<F> {
    flash: F,
    geometry: Geometry,
    when_full: WhenFull,
    newest: Option<Newest>,
    /// Offset in the newest page for the next record; `None` when that page takes no more
    /// (full, or what follows its records is not erased), so the next append opens a page.
    append_at: Option<u32>,
    /// The number the next record gets.
    next_seq: u32,
    summary: Summary,
}

impl<F: NorFlash> RecordLog<F> {
    /// Opens the log in `range` (flash offsets, whole erase pages, at least 2), recovering from
    /// whatever a power cut left: torn records and half-erased pages are ignored and never
    /// read as records. Reads only; an erased region is an empty log.
    pub fn mount(
        flash: F,
        range: Range<u32>,
        when_full: WhenFull,
    ) -> Result<Self, Error<F::Error>> {
        let geometry = geometry_of::<F>(&range, flash.capacity()).map_err(Error::Geometry)?;
        let mut log = Self {
            flash,
            geometry,
            when_full,
            newest: None,
            append_at: None,
            next_seq: 0,
            summary: Summary::default(),
        };
        for slot in 0..geometry.pages {
            if let PageState::Valid(header) = log.page_state(slot)?
                && log.newest.is_none_or(|n| header.epoch > n.header.epoch)
            {
                log.newest = Some(Newest { slot, header });
            }
        }
        log.check_ring()?;
        log.find_append_point()?;
        log.rescan()?;
        Ok(log)
    }

    /// Gives the flash back (to remount it, or to read the simulation's counters).
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The flash, for reading (wear counters in tests).
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// Stores a record; its sequence number once it is committed. On [`Error::Flash`] the
    /// record may or may not have been committed (remount tells); its number is not given to
    /// another record, unless a remount finds it was never committed (then nobody saw it).
    pub fn append<T: Serialize + ?Sized>(
        &mut self,
        record: &T,
    ) -> Result<SequenceNumber, Error<F::Error>> {
        let mut payload = [0u8; MAX_PAYLOAD_LEN];
        let encoded = postcard::to_slice(record, &mut payload).map_err(|e| match e {
            postcard::Error::SerializeBufferFull => Error::RecordTooLarge {
                max: MAX_PAYLOAD_LEN,
            },
            other => Error::Encode(other),
        })?;
        self.append_bytes(encoded)
    }

    /// Stores raw payload bytes (at most [`MAX_PAYLOAD_LEN`]).
    pub fn append_bytes(&mut self, payload: &[u8]) -> Result<SequenceNumber, Error<F::Error>> {
        let len = u16::try_from(payload.len())
            .ok()
            .filter(|&len| usize::from(len) <= MAX_PAYLOAD_LEN)
            .ok_or(Error::RecordTooLarge {
                max: MAX_PAYLOAD_LEN,
            })?;
        // u32::MAX stays unused: it is what an erased sequence field reads.
        let seq = self.next_seq;
        let after = seq
            .checked_add(1)
            .filter(|&n| n != u32::MAX)
            .ok_or(Error::SequenceNumbersExhausted)?;
        let footprint = self.geometry.footprint(len);
        let page_size = self.geometry.page_size;
        let offset = match self.append_at.filter(|&at| at + footprint <= page_size) {
            Some(at) => at,
            None => self.open_page()?,
        };
        let Some(newest) = self.newest else {
            return Err(Error::Full);
        };
        // From here the number is spent and the page is closed until the commit reads back.
        self.next_seq = after;
        self.append_at = None;

        let start = self.geometry.page_start(newest.slot) + offset;
        let header = RecordHeader { seq, len }.encode();
        let mut digest = CRC.digest();
        digest.update(&header);
        digest.update(payload);
        let crc = digest.finalize().to_le_bytes();
        let mut writer = UnitWriter::new(start, self.geometry.unit);
        writer.push(&mut self.flash, &header)?;
        writer.push(&mut self.flash, payload)?;
        writer.push(&mut self.flash, &crc)?;
        writer.flush(&mut self.flash)?;
        self.write_commit(start + self.geometry.body_len(len))?;

        self.append_at = Some(offset + footprint);
        self.summary.count += 1;
        self.summary.first.get_or_insert(seq);
        self.summary.last = Some(seq);
        Ok(SequenceNumber(seq))
    }

    /// The record `seq`, decoded; `None` once it is deleted (or dropped, or damaged). `buf` holds
    /// the raw bytes while decoding: [`MAX_PAYLOAD_LEN`] bytes always suffice.
    pub fn read<T: DeserializeOwned>(
        &mut self,
        seq: SequenceNumber,
        buf: &mut [u8],
    ) -> Result<Option<T>, Error<F::Error>> {
        match self.read_bytes(seq, buf)? {
            Some(bytes) => decode(seq.0, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The raw payload of record `seq`, in `buf`; `None` once it is deleted.
    pub fn read_bytes<'b>(
        &mut self,
        seq: SequenceNumber,
        buf: &'b mut [u8],
    ) -> Result<Option<&'b [u8]>, Error<F::Error>> {
        let mut cursor = self.seek(seq.0)?;
        while let Some(meta) = self.step(&mut cursor)? {
            if meta.header.seq != seq.0 || meta.deleted {
                continue;
            }
            return self.load(&meta, buf);
        }
        Ok(None)
    }

    /// The oldest live record numbered `from` or above, with its number: how a client's "records
    /// after the last one I saw" is served, one record at a time.
    pub fn next_at_or_after<T: DeserializeOwned>(
        &mut self,
        from: u32,
        buf: &mut [u8],
    ) -> Result<Option<(SequenceNumber, T)>, Error<F::Error>> {
        let mut cursor = self.seek(from)?;
        while let Some(meta) = self.step(&mut cursor)? {
            if meta.header.seq < from || meta.deleted {
                continue;
            }
            if let Some(bytes) = self.load(&meta, buf)? {
                let seq = meta.header.seq;
                return decode(seq, bytes).map(|value| Some((SequenceNumber(seq), value)));
            }
        }
        Ok(None)
    }

    /// The live records, oldest first, decoded through `buf`.
    pub fn iter<'a, T: DeserializeOwned>(&'a mut self, buf: &'a mut [u8]) -> Iter<'a, F, T> {
        Iter {
            log: self,
            buf,
            cursor: Cursor {
                age: 0,
                offset: None,
            },
            done: false,
            record: PhantomData,
        }
    }

    /// Numbers of the live records within `range`, oldest first, to `visit` (e.g. to count or
    /// to choose records by number). Stops early when `visit` returns `false`.
    pub fn for_each_in(
        &mut self,
        range: impl RangeBounds<u32>,
        mut visit: impl FnMut(SequenceNumber) -> bool,
    ) -> Result<(), Error<F::Error>> {
        let Some((low, high)) = inclusive(&range) else {
            return Ok(());
        };
        let mut cursor = self.seek(low)?;
        while let Some(meta) = self.step(&mut cursor)? {
            let seq = meta.header.seq;
            if seq < low || meta.deleted || !self.is_intact(&meta)? {
                continue;
            }
            if seq > high || !visit(SequenceNumber(seq)) {
                break;
            }
        }
        Ok(())
    }

    /// The live records numbered within `range`, oldest first, with their payloads (read through
    /// `buf`), to `visit`. Stops early when `visit` returns `false`.
    pub fn for_each_payload_in(
        &mut self,
        range: impl RangeBounds<u32>,
        buf: &mut [u8],
        mut visit: impl FnMut(SequenceNumber, &[u8]) -> bool,
    ) -> Result<(), Error<F::Error>> {
        let Some((low, high)) = inclusive(&range) else {
            return Ok(());
        };
        let mut cursor = self.seek(low)?;
        while let Some(meta) = self.step(&mut cursor)? {
            let seq = meta.header.seq;
            if seq < low || meta.deleted {
                continue;
            }
            let Some(payload) = self.load(&meta, buf)? else {
                continue;
            };
            if seq > high || !visit(SequenceNumber(seq), payload) {
                break;
            }
        }
        Ok(())
    }

    /// Live records numbered within `range`.
    pub fn count_in(&mut self, range: impl RangeBounds<u32>) -> Result<u32, Error<F::Error>> {
        let mut count = 0;
        self.for_each_in(range, |_| {
            count += 1;
            true
        })?;
        Ok(count)
    }

    /// Live records.
    pub fn count(&self) -> u32 {
        self.summary.count
    }

    /// The oldest live record.
    pub fn first(&self) -> Option<SequenceNumber> {
        self.summary.first.map(SequenceNumber)
    }

    /// The newest live record.
    pub fn last(&self) -> Option<SequenceNumber> {
        self.summary.last.map(SequenceNumber)
    }

    /// The number the next successful `append` will get (a peek, not a [`SequenceNumber`]): lets
    /// a protocol with narrower numbers refuse before it would wrap.
    pub fn next_sequence_number(&self) -> u32 {
        self.next_seq
    }

    /// Committed records whose CRC no longer matches (flash damage after the write): they are
    /// skipped as if deleted, and counted here so the damage is not silent.
    pub fn corrupt_records(&self) -> u32 {
        self.summary.corrupt
    }

    /// Deletes record `seq`; whether it was live.
    pub fn delete(&mut self, seq: SequenceNumber) -> Result<bool, Error<F::Error>> {
        Ok(self.delete_in(seq.0..=seq.0)? > 0)
    }

    /// Deletes every live record up to and including `seq` (a gateway's "I have these");
    /// how many.
    pub fn delete_through(&mut self, seq: SequenceNumber) -> Result<u32, Error<F::Error>> {
        self.delete_in(..=seq.0)
    }

    /// Deletes the live records numbered within `range`; how many. Each record's deletion is
    /// one write of its deletion mark, so a power cut part-way leaves some deleted and some not,
    /// oldest first; each record is either wholly there or gone. Space comes back when every
    /// record of the oldest page is deleted (the next page change erases it).
    pub fn delete_in(&mut self, range: impl RangeBounds<u32>) -> Result<u32, Error<F::Error>> {
        let Some((low, high)) = inclusive(&range) else {
            return Ok(0);
        };
        let mut cursor = self.seek(low)?;
        let mut deleted = 0;
        while let Some(meta) = self.step(&mut cursor)? {
            let seq = meta.header.seq;
            if seq < low || meta.deleted || !self.is_intact(&meta)? {
                continue;
            }
            if seq > high {
                break;
            }
            let mark = meta.start + self.geometry.body_len(meta.header.len) + self.geometry.unit;
            let mut writer = UnitWriter::new(mark, self.geometry.unit);
            for _ in 0..self.geometry.unit {
                writer.push(&mut self.flash, &[0])?;
            }
            writer.flush(&mut self.flash)?;
            deleted += 1;
        }
        self.rescan()?;
        Ok(deleted)
    }

    /// Pages the ring may hold records in: all but the one after the newest, which is either
    /// erased, being erased, or waiting to be.
    fn data_pages(&self) -> u32 {
        if self.newest.is_some() {
            self.geometry.pages - 1
        } else {
            0
        }
    }

    /// The page of a given age (0 = oldest) in the ring.
    fn slot_of(&self, age: u32) -> Option<u32> {
        let newest = self.newest?;
        Some((newest.slot + 2 + age) % self.geometry.pages)
    }

    /// The ring must read, oldest to newest: erased pages, then valid pages with increasing
    /// epochs. Power cuts cannot produce anything else (they only ever touch the page after
    /// the newest), so anything else is damage or foreign data.
    fn check_ring(&mut self) -> Result<(), Error<F::Error>> {
        let Some(_) = self.newest else {
            // Empty log: the first page to open (slot 0) may hold a torn header or a half
            // erase; every other page must be erased.
            for slot in 1..self.geometry.pages {
                if self.page_state(slot)? != PageState::Blank {
                    return Err(Error::CorruptPage { page: slot });
                }
            }
            return Ok(());
        };
        let mut previous_epoch: Option<u32> = None;
        for age in 0..self.data_pages() {
            let Some(slot) = self.slot_of(age) else {
                break;
            };
            match self.page_state(slot)? {
                PageState::Blank if previous_epoch.is_none() => {}
                PageState::Valid(h) if previous_epoch.is_none_or(|p| h.epoch > p) => {
                    previous_epoch = Some(h.epoch);
                }
                _ => return Err(Error::CorruptPage { page: slot }),
            }
        }
        Ok(())
    }

    /// Walks the newest page to its end: where the next record goes (after any record a power
    /// cut tore, if the rest of the page is erased), and the next number.
    fn find_append_point(&mut self) -> Result<(), Error<F::Error>> {
        let Some(newest) = self.newest else {
            return Ok(());
        };
        let mut offset = self.geometry.header_len();
        let mut committed: u32 = 0;
        let mut next_seq = newest.header.first_seq;
        self.append_at = loop {
            match self.record_at(newest.slot, offset)? {
                Found::Record(meta) => {
                    committed += 1;
                    if self.is_intact(&meta)? {
                        next_seq = next_seq.max(meta.header.seq.saturating_add(1));
                    }
                    offset = meta.next;
                }
                Found::Blank => {
                    let from = self.geometry.page_start(newest.slot) + offset;
                    let to = self.geometry.page_start(newest.slot) + self.geometry.page_size;
                    break self.is_erased(from, to)?.then_some(offset);
                }
                Found::Torn { next } => offset = next,
                Found::End => break None,
            }
        };
        // Records of a page are numbered consecutively from its first_seq, so even a record
        // damaged since (its number unreadable) keeps its number from coming back.
        self.next_seq = next_seq.max(newest.header.first_seq.saturating_add(committed));
        Ok(())
    }

    /// Recounts the live records.
    fn rescan(&mut self) -> Result<(), Error<F::Error>> {
        let mut summary = Summary::default();
        let mut cursor = Cursor {
            age: 0,
            offset: None,
        };
        while let Some(meta) = self.step(&mut cursor)? {
            if meta.deleted {
                continue;
            }
            if !self.is_intact(&meta)? {
                summary.corrupt += 1;
                continue;
            }
            summary.count += 1;
            summary.first.get_or_insert(meta.header.seq);
            summary.last = Some(meta.header.seq);
        }
        self.summary = summary;
        Ok(())
    }

    /// Starts a new page after the newest, erasing whatever the page held; returns the offset
    /// of its first record. The oldest page leaves the ring the moment the new header commits.
    fn open_page(&mut self) -> Result<u32, Error<F::Error>> {
        let pages = self.geometry.pages;
        let (slot, epoch) = match self.newest {
            None => (0, 0),
            Some(newest) => {
                let leaving = (newest.slot + 2) % pages;
                if self.when_full == WhenFull::Refuse && self.has_live_records(leaving)? {
                    return Err(Error::Full);
                }
                let epoch = newest
                    .header
                    .epoch
                    .checked_add(1)
                    .filter(|&e| e != u32::MAX)
                    .ok_or(Error::SequenceNumbersExhausted)?;
                ((newest.slot + 1) % pages, epoch)
            }
        };
        self.append_at = None;
        let start = self.geometry.page_start(slot);
        self.flash
            .erase(start, start + self.geometry.page_size)
            .map_err(Error::Flash)?;
        let header = PageHeader {
            epoch,
            first_seq: self.next_seq,
        };
        let mut writer = UnitWriter::new(start, self.geometry.unit);
        writer.push(&mut self.flash, &header.encode())?;
        writer.flush(&mut self.flash)?;
        self.write_commit(start + self.geometry.header_commit_at())?;
        let had_pages = self.newest.is_some();
        self.newest = Some(Newest { slot, header });
        if had_pages {
            self.rescan()?;
        }
        let first = self.geometry.header_len();
        self.append_at = Some(first);
        Ok(first)
    }

    /// Whether page `slot` (the oldest of the ring) holds a record not deleted.
    fn has_live_records(&mut self, slot: u32) -> Result<bool, Error<F::Error>> {
        if !matches!(self.page_state(slot)?, PageState::Valid(_)) {
            return Ok(false);
        }
        let mut offset = self.geometry.header_len();
        loop {
            match self.record_at(slot, offset)? {
                Found::Record(meta) => {
                    if !meta.deleted && self.is_intact(&meta)? {
                        return Ok(true);
                    }
                    offset = meta.next;
                }
                Found::Torn { next } => offset = next,
                Found::Blank | Found::End => return Ok(false),
            }
        }
    }

    /// A cursor at the page where numbers `from` and above can start.
    fn seek(&mut self, from: u32) -> Result<Cursor, Error<F::Error>> {
        let mut age = 0;
        for candidate in 0..self.data_pages() {
            let Some(slot) = self.slot_of(candidate) else {
                break;
            };
            if let PageState::Valid(h) = self.page_state(slot)? {
                // Every record before this page is numbered below its first_seq.
                if h.first_seq <= from {
                    age = candidate;
                }
            }
        }
        Ok(Cursor { age, offset: None })
    }

    /// The next committed record (deleted or not) after `cursor`, oldest first.
    fn step(&mut self, cursor: &mut Cursor) -> Result<Option<RecordMeta>, Error<F::Error>> {
        while cursor.age < self.data_pages() {
            let Some(slot) = self.slot_of(cursor.age) else {
                break;
            };
            let offset = match cursor.offset {
                Some(offset) => Some(offset),
                None => match self.page_state(slot)? {
                    PageState::Valid(_) => Some(self.geometry.header_len()),
                    PageState::Blank | PageState::Other => None,
                },
            };
            let found = match offset {
                Some(offset) => self.record_at(slot, offset)?,
                None => Found::End,
            };
            match found {
                Found::Record(meta) => {
                    cursor.offset = Some(meta.next);
                    return Ok(Some(meta));
                }
                Found::Torn { next } => cursor.offset = Some(next),
                Found::Blank | Found::End => {
                    cursor.age += 1;
                    cursor.offset = None;
                }
            }
        }
        Ok(None)
    }

    fn page_state(&mut self, slot: u32) -> Result<PageState, Error<F::Error>> {
        let start = self.geometry.page_start(slot);
        let end = start + self.geometry.header_len();
        if self.is_erased(start, end)? {
            return Ok(PageState::Blank);
        }
        let mut raw = [0u8; PAGE_HEADER_LEN];
        self.read_exact(start, &mut raw)?;
        let committed = self.is_commit(start + self.geometry.header_commit_at())?;
        Ok(match PageHeader::decode(&raw) {
            Some(header) if committed => PageState::Valid(header),
            _ => PageState::Other,
        })
    }

    /// Reads what is at `offset` of page `slot`, following no length it cannot trust.
    fn record_at(&mut self, slot: u32, offset: u32) -> Result<Found, Error<F::Error>> {
        let geometry = self.geometry;
        if offset + geometry.footprint(0) > geometry.page_size {
            return Ok(Found::End);
        }
        let start = geometry.page_start(slot) + offset;
        let mut raw = [0u8; RECORD_HEADER_LEN];
        self.read_exact(start, &mut raw)?;
        if raw == [ERASED; RECORD_HEADER_LEN] {
            return Ok(Found::Blank);
        }
        let Some(header) = RecordHeader::decode(&raw).filter(|h| {
            usize::from(h.len) <= MAX_PAYLOAD_LEN
                && offset + geometry.footprint(h.len) <= geometry.page_size
        }) else {
            return Ok(Found::Torn {
                next: offset + geometry.footprint(MAX_PAYLOAD_LEN as u16),
            });
        };
        let next = offset + geometry.footprint(header.len);
        let commit = start + geometry.body_len(header.len);
        if !self.is_commit(commit)? {
            return Ok(Found::Torn { next });
        }
        let mark = commit + geometry.unit;
        let deleted = !self.is_erased(mark, mark + geometry.unit)?;
        Ok(Found::Record(RecordMeta {
            header,
            start,
            next,
            deleted,
        }))
    }

    /// Whether the record's CRC matches its header and payload.
    fn is_intact(&mut self, meta: &RecordMeta) -> Result<bool, Error<F::Error>> {
        let mut digest = CRC.digest();
        digest.update(&meta.header.encode());
        let payload = meta.start + RECORD_HEADER_LEN as u32;
        let len = u32::from(meta.header.len);
        self.read_with(payload, len, |bytes| digest.update(bytes))?;
        let mut stored = [0u8; CRC_LEN];
        self.read_exact(payload + len, &mut stored)?;
        Ok(digest.finalize() == u32::from_le_bytes(stored))
    }

    /// The record's payload in `buf`, if its CRC matches.
    fn load<'b>(
        &mut self,
        meta: &RecordMeta,
        buf: &'b mut [u8],
    ) -> Result<Option<&'b [u8]>, Error<F::Error>> {
        let len = usize::from(meta.header.len);
        let payload = buf
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { needed: len })?;
        let at = meta.start + RECORD_HEADER_LEN as u32;
        self.read_exact(at, payload)?;
        let mut stored = [0u8; CRC_LEN];
        self.read_exact(at + len as u32, &mut stored)?;
        let mut digest = CRC.digest();
        digest.update(&meta.header.encode());
        digest.update(payload);
        Ok((digest.finalize() == u32::from_le_bytes(stored)).then_some(&*payload))
    }

    fn write_commit(&mut self, at: u32) -> Result<(), Error<F::Error>> {
        let mut writer = UnitWriter::new(at, self.geometry.unit);
        for _ in 0..self.geometry.unit as usize / COMMIT.len() {
            writer.push(&mut self.flash, &COMMIT)?;
        }
        writer.flush(&mut self.flash)
    }

    /// Whether the write unit at `at` is exactly the commit mark.
    fn is_commit(&mut self, at: u32) -> Result<bool, Error<F::Error>> {
        let mut all = true;
        let mut position = 0usize;
        self.read_with(at, self.geometry.unit, |bytes| {
            for &b in bytes {
                all &= COMMIT.get(position % COMMIT.len()) == Some(&b);
                position += 1;
            }
        })?;
        Ok(all)
    }

    /// Whether every byte of `from..to` reads erased.
    fn is_erased(&mut self, from: u32, to: u32) -> Result<bool, Error<F::Error>> {
        let mut erased = true;
        self.read_with(from, to.saturating_sub(from), |bytes| {
            erased &= bytes.iter().all(|&b| b == ERASED);
        })?;
        Ok(erased)
    }

    fn read_exact(&mut self, at: u32, out: &mut [u8]) -> Result<(), Error<F::Error>> {
        let mut filled = 0usize;
        self.read_with(at, out.len() as u32, |bytes| {
            for (dst, src) in out.iter_mut().skip(filled).zip(bytes) {
                *dst = *src;
            }
            filled += bytes.len();
        })
    }

    /// Reads `len` bytes at `at` in aligned blocks (any read size that divides the write unit
    /// works), handing each piece to `sink` in order.
    fn read_with(
        &mut self,
        at: u32,
        len: u32,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<(), Error<F::Error>> {
        const BLOCK: u32 = MAX_UNIT as u32;
        let mut block = [0u8; MAX_UNIT];
        let end = at + len;
        let mut position = at;
        while position < end {
            let block_start = position - position % BLOCK;
            self.flash
                .read(block_start, &mut block)
                .map_err(Error::Flash)?;
            let from = (position - block_start) as usize;
            let to = (end - block_start).min(BLOCK) as usize;
            if let Some(piece) = block.get(from..to) {
                sink(piece);
            }
            position = block_start + to as u32;
        }
        Ok(())
    }
}

/// Iterator over the live records, oldest first; see [`RecordLog::iter`]. Ends after the
/// first error.
#[derive(Debug)]
pub struct Iter<'a, F, T> {
    log: &'a mut RecordLog<F>,
    buf: &'a mut [u8],
    cursor: Cursor,
    done: bool,
    record: PhantomData<fn() -> T>,
}

impl<F: NorFlash, T: DeserializeOwned> Iterator for Iter<'_, F, T> {
    type Item = Result<(SequenceNumber, T), Error<F::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let item = match self.log.step(&mut self.cursor) {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(meta)) if meta.deleted => continue,
                Ok(Some(meta)) => match self.log.load(&meta, self.buf) {
                    Ok(None) => continue,
                    Ok(Some(bytes)) => {
                        let seq = meta.header.seq;
                        decode(seq, bytes).map(|value| (SequenceNumber(seq), value))
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            self.done = item.is_err();
            return Some(item);
        }
        None
    }
}

/// Writes bytes in whole write units, padding the last with 0xFF.
#[derive(Debug)]
struct UnitWriter {
    at: u32,
    unit: usize,
    word: [u8; MAX_UNIT],
    fill: usize,
}

impl UnitWriter {
    fn new(at: u32, unit: u32) -> Self {
        Self {
            at,
            unit: unit as usize,
            word: [ERASED; MAX_UNIT],
            fill: 0,
        }
    }

    fn push<F: NorFlash>(&mut self, flash: &mut F, bytes: &[u8]) -> Result<(), Error<F::Error>> {
        for &b in bytes {
            if let Some(slot) = self.word.get_mut(self.fill) {
                *slot = b;
            }
            self.fill += 1;
            if self.fill >= self.unit {
                self.flush(flash)?;
            }
        }
        Ok(())
    }

    fn flush<F: NorFlash>(&mut self, flash: &mut F) -> Result<(), Error<F::Error>> {
        if self.fill == 0 {
            return Ok(());
        }
        if let Some(word) = self.word.chunks(self.unit).next() {
            flash.write(self.at, word).map_err(Error::Flash)?;
        }
        self.at += self.unit as u32;
        self.word = [ERASED; MAX_UNIT];
        self.fill = 0;
        Ok(())
    }
}

fn decode<T: DeserializeOwned, E>(seq: u32, bytes: &[u8]) -> Result<T, Error<E>> {
    postcard::from_bytes(bytes).map_err(|error| Error::Decode {
        sequence_number: seq,
        error,
    })
}

/// A range of numbers as `low..=high`; `None` when empty.
fn inclusive(range: &impl RangeBounds<u32>) -> Option<(u32, u32)> {
    let low = match range.start_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let high = match range.end_bound() {
        Bound::Included(&n) => n,
        Bound::Excluded(&n) => n.checked_sub(1)?,
        Bound::Unbounded => u32::MAX,
    };
    (low <= high).then_some((low, high))
}

/// Checks that the flash and region can hold a log; where things go.
fn geometry_of<F: NorFlash>(
    range: &Range<u32>,
    capacity: usize,
) -> Result<Geometry, GeometryError> {
    let unit = F::WRITE_SIZE.max(MIN_UNIT);
    if !unit.is_power_of_two() || unit > MAX_UNIT || F::READ_SIZE == 0 || unit % F::READ_SIZE != 0 {
        return Err(GeometryError::UnsupportedAccessSize);
    }
    let page_size = u32::try_from(F::ERASE_SIZE).map_err(|_| GeometryError::UnsupportedPageSize)?;
    let geometry = Geometry {
        base: range.start,
        pages: 0,
        page_size,
        unit: unit as u32,
    };
    let largest = geometry.header_len() + geometry.footprint(MAX_PAYLOAD_LEN as u16);
    if page_size == 0 || page_size % MAX_UNIT as u32 != 0 || page_size < largest {
        return Err(GeometryError::UnsupportedPageSize);
    }
    if range.start >= range.end
        || !range.start.is_multiple_of(page_size)
        || !range.end.is_multiple_of(page_size)
    {
        return Err(GeometryError::RangeNotPageAligned);
    }
    if range.end as usize > capacity {
        return Err(GeometryError::RangeOutOfFlash);
    }
    let pages = (range.end - range.start) / page_size;
    if pages < 2 {
        return Err(GeometryError::TooFewPages);
    }
    Ok(Geometry { pages, ..geometry })
}
