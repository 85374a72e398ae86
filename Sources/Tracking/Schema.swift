import GRDB

/// The database schema, one numbered migration per step (see docs/schema.md). Never edit a
/// migration that has shipped; add the next one. Times are Unix seconds (REAL, UTC):
/// `datetime(created, 'unixepoch', 'localtime')` in the sqlite3 shell.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "sessions") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("started", .double).notNull()
                t.column("pid", .integer).notNull()
                t.column("host", .text).notNull()
            }
            try db.create(table: "runs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("session", .integer).notNull().references("sessions")
                t.column("created", .double).notNull()
                t.column("finished", .double)
                t.column("status", .text).notNull()
                t.column("dataset", .text).notNull()
                t.column("model", .text).notNull()
                t.column("parameter_count", .integer).notNull()
                t.column("seed", .text).notNull()
                t.column("best_accuracy", .double)
                t.column("best_epoch", .integer)
                t.column("final_loss", .double)
                t.column("epochs", .integer).notNull().defaults(to: 0)
                t.column("train_seconds", .double).notNull().defaults(to: 0)
                t.column("checkpoint", .text)
                t.column("note", .text)
            }
            try db.create(table: "params") { t in
                t.column("run", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("value", .text).notNull()
                t.column("from_epoch", .integer).notNull()
            }
            try db.create(table: "metrics") { t in
                t.column("run", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("epoch", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("value", .double).notNull()
                t.column("time", .double).notNull()
                t.uniqueKey(["run", "epoch", "name"])
            }
            try db.create(table: "events") { t in
                t.column("run", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("epoch", .integer).notNull()
                t.column("kind", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("time", .double).notNull()
            }
            try db.create(table: "commands") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("session", .integer).notNull().references("sessions")
                t.column("time", .double).notNull()
                t.column("command", .text).notNull()
                t.column("seconds", .double).notNull()
                t.column("failed", .boolean).notNull()
                t.column("error", .text)
            }
            try db.create(index: "runs_status", on: "runs", columns: ["status"])
        }
        // A pid alone can be reused by an unrelated process after the owner died; its start
        // time (Linux: /proc/PID/stat, clock ticks since boot) tells the two apart.
        // The indexes serve `compare` and crash detection on databases with many runs.
        migrator.registerMigration("v2") { db in
            try db.alter(table: "sessions") { t in
                t.add(column: "process_start", .integer)
            }
            try db.create(index: "params_run", on: "params", columns: ["run"])
            try db.create(index: "events_run", on: "events", columns: ["run"])
            try db.create(index: "runs_session", on: "runs", columns: ["session"])
            try db.create(index: "commands_session", on: "commands", columns: ["session"])
        }
        return migrator
    }

    /// The migrations this build knows, oldest first.
    static var migrationIdentifiers: [String] { migrator.migrations }
}
