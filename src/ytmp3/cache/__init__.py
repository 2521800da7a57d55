"""What ytmp3 keeps in Redis: probe answers, job records, claims, rate counters."""
