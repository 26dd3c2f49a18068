//! Admin accounts (reviewers and staff), their login and tokens.
