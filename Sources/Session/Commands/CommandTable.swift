extension Session {
    /// The session's own commands, in the order `help` lists them; the REPL adds its
    /// machinery (help, history, run, quit) from `replCommands`.
    static var sessionCommands: [Command] {
        dataCommands + settingsCommands + trainingCommands + freezeCommands + inspectCommands + checkpointCommands + runCommands + trackingCommands + bookkeepingCommands + exportCommands + sweepCommands
    }
}
