package executor

import (
	"net"
	"os"
	"time"

	"github.com/shoalrt/shoal/messages"
)

// serverInfo adds the servers view's figures (S3.4) to a load report: the
// fraction of the working directory's file system in use, the processes on
// the machine and its first non-loopback address. They change slowly and
// cost a statfs and a /proc listing, so they are read every refresh (10 s)
// and repeated in between. Off Linux, what cannot be read is 0.
type serverInfo struct {
	disk  float64
	procs int32
	ip    string
	age   time.Duration // since the last read
	read  bool
}

const serverRefresh = 10 * time.Second

func (s *serverInfo) fill(l *messages.LoadReport, every time.Duration) {
	s.age += every
	if !s.read || s.age >= serverRefresh {
		s.read, s.age = true, 0
		dir, err := os.Getwd()
		if err != nil {
			dir = "/"
		}
		s.disk, s.procs, s.ip = DiskUse(dir), int32(ProcessCount()), FirstIP()
	}
	l.Disk, l.Procs, l.IP = s.disk, s.procs, s.ip
}

// FirstIP is the machine's first non-loopback, non-link-local address
// (IPv4 preferred), or "".
func FirstIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		if ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
		if v6 == "" {
			v6 = ipn.IP.String()
		}
	}
	return v6
}
