"""Application core without Qt: config, catalogue and forms, identity rules, sessions,
submissions, the platform client and sync, receipts, translation and audit."""
