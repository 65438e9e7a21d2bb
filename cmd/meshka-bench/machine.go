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
