"""Tests for mailbot."""
