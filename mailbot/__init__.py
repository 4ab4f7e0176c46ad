"""mailbot: a daemon that keeps a customer-complaints procedure over plain email."""
