#![allow(clippy::unwrap_used)]
use relais_board_sim::RamFlash;
use relais_firmware::record_log::{RecordLog, WhenFull};
#[test]
fn dbg() {
    let range = 0..(4 * 4096u32);
    let mut probe =
        RecordLog::mount(RamFlash::<4>::new(), range.clone(), WhenFull::Refuse).unwrap();
    probe.append(&0u32).unwrap();
    let before = probe.flash().bytes_written();
    probe.append(&1u32).unwrap();
    let write_len = (probe.flash().bytes_written() - before) as usize;
    println!("write_len {write_len}");
    for cut in 0..write_len {
        let mut log =
            RecordLog::mount(RamFlash::<4>::new(), range.clone(), WhenFull::Refuse).unwrap();
        for i in 0..5u32 {
            log.append(&i).unwrap();
        }
        let mut flash = log.into_inner();
        flash.cut_power_after(cut);
        let mut log = RecordLog::mount(flash, range.clone(), WhenFull::Refuse).unwrap();
        let r = log.append(&99u32);
        let mut flash = log.into_inner();
        flash.restore_power();
        let mut log = RecordLog::mount(flash, range.clone(), WhenFull::Refuse).unwrap();
        let last = log.last();
        let next = log.append(&6u32).unwrap();
        println!(
            "cut {cut} r {:?} count {} last {:?} next {:?}",
            r.is_ok(),
            log.count(),
            last,
            next
        );
    }
}
