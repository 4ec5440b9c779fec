// The host memory of this process: its peak resident set size (VmHWM of /proc/self/status, the
// high-water mark that getrusage's ru_maxrss also reports), and a way to restart that mark after
// a start-up probe whose buffers are freed again (the sgemm of trainer/device_peak.h).
#pragma once

namespace ph {

// Peak resident set size in MiB.
double peak_rss_mib();

// Restarts the high-water mark at the current resident size (Linux: "5" into
// /proc/self/clear_refs). False where the kernel does not allow it; the mark then keeps the
// earlier peak.
bool reset_peak_rss();

}  // namespace ph
