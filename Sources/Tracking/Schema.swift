import GRDB

/// The database schema, one numbered migration per step; never edit a shipped migration, add
/// the next one. Times are Unix seconds (REAL): `datetime(created, 'unixepoch')` in sqlite3.
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
        return migrator
    }
}
