"""Edges to the mail servers: IMAP in, SMTP out."""
