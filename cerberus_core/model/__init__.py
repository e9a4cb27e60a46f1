"""The model layer: CerberusForRanking (one body, several heads), how it is built from a spec or an embedded encoder, strict safetensors files, precision, length-grouped batches."""
