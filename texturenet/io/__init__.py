"""Files in and out, below everything that reads or writes them: images and atomic writes."""
