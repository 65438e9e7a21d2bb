package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machine records what the figures were measured on: benchmark numbers
// mean nothing without it.
type machine struct {
	cpus      int
	cpuModel  string
	memTotal  int64 // bytes; 0 when unknown
	goVersion string
	goos      string
	goarch    string
	date      time.Time
	commit    string
	// load1 is the 1-minute load average when the run started; other
	// work on the machine shows here (the harness alone adds about 1-2).
	load1 string
	// pressure is the CPU pressure when the run started (cpuPressure).
	pressure string
}

func readMachine() machine {
	return machine{
		cpus:      runtime.NumCPU(),
		cpuModel:  cpuModel(),
		memTotal:  meminfo("MemTotal"),
		goVersion: runtime.Version(),
		goos:      runtime.GOOS,
		goarch:    runtime.GOARCH,
		date:      time.Now().UTC(),
		commit:    gitCommit(),
		load1:     loadAvg(),
		pressure:  cpuPressure(),
	}
}

// loadAvg is the 1-minute load average from /proc/loadavg, "unknown"
// elsewhere.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// cpuPressure is the share of the last minute in which some runnable
// task waited for a CPU (/proc/pressure/cpu, "some avg60"), "unknown"
// where the kernel does not report it. On this shared 2-core machine it
// says how much the run competed with itself and with other work.
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "avg60="); ok {
				return v + "%"
			}
		}
	}
	return "unknown"
}

func (m machine) summary() string {
	return fmt.Sprintf("%d CPUs (%s), %s memory, %s %s/%s, commit %s",
		m.cpus, m.cpuModel, formatMem(m.memTotal), m.goVersion, m.goos, m.goarch, m.commit)
}

func formatMem(b int64) string {
	if b <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}

// cpuModel is the first "model name" in /proc/cpuinfo (Linux only; other
// systems and architectures without that line report "unknown").
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// meminfo reads one /proc/meminfo field in bytes, 0 when unavailable.
func meminfo(field string) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		fs := strings.Fields(v) // "24576000 kB"
		if len(fs) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n *= 1024
		}
		return n
	}
	return 0
}

// gitCommit names the measured source; a modified work tree is flagged
// because the figures then belong to no commit exactly.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " (work tree modified)"
	}
	return c
}

// cpuTimes are the whole machine's CPU times from /proc/stat's first
// line, in clock ticks: what a run's cores did besides its own process
// (a load client in another process, the kernel's network stack, other
// guests' steal).
type cpuTimes struct {
	user, kernel, idle, steal uint64
	ok                        bool
}

// readCPU reads /proc/stat; ok is false where there is none.
func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}
	}
	v := make([]uint64, 8)
	for i := range v {
		v[i], err = strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return cpuTimes{}
		}
	}
	// user nice system idle iowait irq softirq steal
	return cpuTimes{user: v[0] + v[1], kernel: v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7], ok: true}
}

// sharesSince is the percentage of the machine's CPU time since a spent
// in user code, the kernel (system, irq and softirq), idle and stolen.
func (c cpuTimes) sharesSince(a cpuTimes) (user, kernel, idle, steal float64, ok bool) {
	if !a.ok || !c.ok {
		return 0, 0, 0, 0, false
	}
	du, dk, di, ds := float64(c.user-a.user), float64(c.kernel-a.kernel), float64(c.idle-a.idle), float64(c.steal-a.steal)
	all := du + dk + di + ds
	if all <= 0 {
		return 0, 0, 0, 0, false
	}
	return 100 * du / all, 100 * dk / all, 100 * di / all, 100 * ds / all, true
}
