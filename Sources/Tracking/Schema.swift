import Foundation
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
        // Lineage: a run forked, restored or carried onto new data from another run's state at
        // an epoch. Commands name the run they belong to (the commands that set a run up are
        // tagged when it starts), for `diff`. lr-find range tests are records of their own,
        // not runs: they change no model.
        migrator.registerMigration("v3") { db in
            try db.alter(table: "runs") { t in
                t.add(column: "parent_run", .integer).references("runs", onDelete: .setNull)
                t.add(column: "parent_epoch", .integer)
            }
            try db.alter(table: "commands") { t in
                t.add(column: "run", .integer).references("runs", onDelete: .setNull)
            }
            try db.create(index: "commands_run", on: "commands", columns: ["run"])
            try db.create(table: "lr_finds") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("session", .integer).notNull().references("sessions")
                t.column("created", .double).notNull()
                t.column("dataset", .text).notNull()
                t.column("model", .text).notNull()
                t.column("optimizer", .text).notNull()
                t.column("batch", .integer).notNull()
                t.column("start_lr", .double).notNull()
                t.column("end_lr", .double).notNull()
                t.column("steps", .integer).notNull()
                t.column("suggested_lr", .double)
                t.column("run", .integer).references("runs", onDelete: .setNull)
            }
            try db.create(table: "lr_find_points") { t in
                t.column("lr_find", .integer).notNull().references("lr_finds", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("lr", .double).notNull()
                t.column("loss", .double).notNull()
                t.uniqueKey(["lr_find", "step"])
            }
        }
        // MLflow export: which runs were asked to be on which tracking server, the MLflow run
        // each became and the state last sent, so what is not exported yet is known from the
        // file (`runs` says it; a later export or process catches up). The database's identity
        // is a tag on every exported run, so two files' "run 1" never merge on one server.
        migrator.registerMigration("v4") { db in
            try db.create(table: "database_identity") { t in
                t.column("uuid", .text).notNull()
            }
            try db.execute(sql: "INSERT INTO database_identity (uuid) VALUES (?)", arguments: [UUID().uuidString.lowercased()])
            try db.create(table: "mlflow_exports") { t in
                t.column("run", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("server", .text).notNull()
                t.column("experiment", .text).notNull()
                t.column("mlflow_run", .text)
                t.column("sent_state", .text)
                t.column("sent", .double)
                t.column("error", .text)
                t.column("error_time", .double)
                t.uniqueKey(["run", "server", "experiment"])
            }
        }
        // The run lease: the session that may train a run (write its epochs) right now. One
        // process trains a run at a time; the claim is one IMMEDIATE transaction, so two
        // processes resuming at the same instant cannot both win. A holder whose process is
        // gone has given the run up. NULL: nobody holds it.
        migrator.registerMigration("v5") { db in
            try db.alter(table: "runs") { t in
                t.add(column: "holder", .integer).references("sessions")
            }
            try db.execute(sql: "UPDATE runs SET holder = session WHERE status = 'running'")
        }
        // Why a range test ended early: diverged and interrupted (Ctrl-C) were told apart only
        // on the screen, and `steps` alone read as "diverged". NULL for tests recorded before.
        migrator.registerMigration("v6") { db in
            try db.alter(table: "lr_finds") { t in
                t.add(column: "outcome", .text)
                t.add(column: "planned_steps", .integer)
            }
        }
        // Runs a user keeps track of: a name (`name 3 cnn-lstm`), any number of tags, and an
        // archived flag that hides a run from lists without deleting it.
        migrator.registerMigration("v7") { db in
            try db.alter(table: "runs") { t in
                t.add(column: "name", .text)
                t.add(column: "archived", .boolean).notNull().defaults(to: false)
            }
            try db.create(table: "run_tags") { t in
                t.column("run", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("tag", .text).notNull()
                t.uniqueKey(["run", "tag"])
            }
        }
        // Per-step values: a moving learning-rate schedule's rate at every optimizer step
        // (`plot lr` draws it by step), written with the epoch's record, not a row per step as
        // it trains. `step` counts the model's optimizer steps from 1.
        migrator.registerMigration("v8") { db in
            try db.create(table: "step_metrics") { t in
                t.column("run", .integer).notNull().references("runs", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("epoch", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("value", .double).notNull()
                t.uniqueKey(["run", "step", "name"])
            }
        }
        // Sweeps (`sweep lr 1e-4,1e-3 train 3`): the command, its plan (JSON: axes, base
        // settings, spec, epochs per rung) and where it got to, so `sweep resume` can carry on
        // in any process; one `sweep_runs` row per configuration, linked to its run once started.
        migrator.registerMigration("v9") { db in
            try db.create(table: "sweeps") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("session", .integer).notNull().references("sessions")
                t.column("created", .double).notNull()
                t.column("finished", .double)
                t.column("command", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("state", .text).notNull()
                t.column("rung", .integer).notNull().defaults(to: 0)
                t.column("plan", .text).notNull()
                t.column("data_fingerprint", .text).notNull()
            }
            try db.create(table: "sweep_runs") { t in
                t.column("sweep", .integer).notNull().references("sweeps", onDelete: .cascade)
                t.column("config", .integer).notNull()
                t.column("settings", .text).notNull()
                t.column("run", .integer).references("runs", onDelete: .setNull)
                t.column("epochs", .integer).notNull().defaults(to: 0)
                t.column("status", .text).notNull()
                t.uniqueKey(["sweep", "config"])
            }
            try db.create(index: "sweep_runs_run", on: "sweep_runs", columns: ["run"])
        }
        return migrator
    }

    /// The migrations this build knows, oldest first.
    static var migrationIdentifiers: [String] { migrator.migrations }
}
