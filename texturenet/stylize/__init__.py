"""Using a trained generator: photos, folders, texture samples, video, colour preservation."""
