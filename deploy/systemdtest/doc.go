// Package systemdtest installs kickmon's Debian package in a booted Debian 12
// container (systemd-nspawn, systemd as PID 1) and checks the units under a
// real systemd: readiness, status lines, the watchdog, the hardening, the
// database restarting, socket access, and a clean purge. Its test is built
// only with -tags systemd and needs root: run it with `make systemd-test`.
package systemdtest
