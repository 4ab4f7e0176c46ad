"""The complaints procedure as pure code: calendar, deadlines, what is due."""
