package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.up.sql
var migrationFS embed.FS

// Migration is one embedded schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.up\.sql$`)

// Migrations lists the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("embedded migration %s: name is not NNN_name.up.sql", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		v, _ := strconv.Atoi(m[1])
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("embedded migrations: want version %d, found %d", i+1, m.Version)
		}
	}
	return out, nil
}

// LatestVersion is the schema version this binary knows.
func LatestVersion() int {
	ms, err := Migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// ErrSchemaTooNew means the database was migrated by a newer kickwriter.
var ErrSchemaTooNew = errors.New("database schema is newer than this kickwriter")

// Migrate brings the kickmon schema up to date on conn, in one transaction
// under an advisory lock (so concurrent writers do not race), and returns
// the versions before and after. A database at a newer version than this
// binary knows is an error wrapping ErrSchemaTooNew.
func Migrate(ctx context.Context, conn Execer) (from, to int, err error) {
	return migrateTo(ctx, conn, -1)
}

// migrateTo is Migrate up to version (-1: the latest), for tests of a
// migration over data of the schema before it.
func migrateTo(ctx context.Context, conn Execer, version int) (from, to int, err error) {
	ms, err := Migrations()
	if err != nil {
		return 0, 0, err
	}
	if version >= 0 && version < len(ms) {
		ms = ms[:version]
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('kickmon.schema_migrations'))`); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS kickmon;
CREATE TABLE IF NOT EXISTS kickmon.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON SCHEMA kickmon IS 'kickmon: Kick.com streamer status, written by kickwriter.';
COMMENT ON TABLE kickmon.schema_migrations IS 'Schema versions applied by kickwriter (migrations embedded in the binary).'`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM kickmon.schema_migrations`).Scan(&from); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if from > len(ms) {
			return fmt.Errorf("%w: database is at version %d, this binary knows up to %d (upgrade kickwriter)", ErrSchemaTooNew, from, len(ms))
		}
		for _, m := range ms[from:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO kickmon.schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record migration %03d: %w", m.Version, err)
			}
		}
		return nil
	})
	if err != nil {
		return from, from, err
	}
	return from, len(ms), nil
}

// Execer begins transactions: a *pgx.Conn or a *pgxpool.Pool.
type Execer interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// MigrateURL connects to url and migrates it, River's tables included
// (for pgtest templates).
func MigrateURL(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if _, _, err = Migrate(ctx, pool); err != nil {
		return err
	}
	return MigrateRiver(ctx, pool)
}
