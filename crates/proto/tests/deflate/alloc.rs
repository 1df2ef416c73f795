//! Counts what the current thread allocates (a global allocator for this test crate).

use super::*;

/// Counts what the current thread allocates, so a test can show that inflating a bomb
/// never asks for more memory than the message limit allows.
pub(crate) struct Tracking;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

pub(crate) fn grew(by: usize, block: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + by;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(block)));
    let _ = TOTAL.try_with(|total| total.set(total.get() + by));
}

pub(crate) fn shrank(by: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(by)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size(), layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size(), layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size(), new_size);
        } else {
            shrank(layout.size() - new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
pub(crate) static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns its result, the most memory this thread held at once during it
/// beyond what it held before, and the largest single block it asked for.
pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (
        result,
        PEAK.with(Cell::get) - start,
        LARGEST.with(Cell::get),
    )
}

/// Runs `f` and returns its result and the bytes this thread allocated during it in all.
pub(crate) fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = TOTAL.with(Cell::get);
    let result = f();
    (result, TOTAL.with(Cell::get) - start)
}
