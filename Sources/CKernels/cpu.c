// CPU topology for sizing the thread pool.

#define _GNU_SOURCE
#include "CKernels.h"

#include <stdio.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__linux__)
static long read_topology(int cpu, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, name);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long value = -1;
    if (fscanf(f, "%ld", &value) != 1) value = -1;
    fclose(f);
    return value;
}
#endif

int ob_physical_core_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return (int)sysconf(_SC_NPROCESSORS_ONLN);
    // Distinct (package, core) pairs among the CPUs this process may run on; hyper-threads share a core's vector
    // units and add little to these kernels.
    enum { MAX_CORES = 1024 };
    long seen[MAX_CORES];
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < MAX_CORES; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        long package = read_topology(cpu, "physical_package_id"), core = read_topology(cpu, "core_id");
        long key = core < 0 ? -1 - cpu : package * 65536 + core;
        int known = 0;
        for (int i = 0; i < count && !known; i++) known = seen[i] == key;
        if (!known) seen[count++] = key;
    }
    return count > 0 ? count : 1;
#else
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
#endif
}

uint64_t ob_read_words(const uint64_t *p, size_t count) {
    // Four independent sums keep several loads in flight; the result only exists so the reads cannot be skipped.
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        a += p[i];
        b ^= p[i + 1];
        c += p[i + 2];
        d ^= p[i + 3];
    }
    for (; i < count; i++) a += p[i];
    return a ^ b ^ c ^ d;
}
