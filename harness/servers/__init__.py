"""What runs a model on this machine: the embedded weights and their server, llama.cpp's llama-server built
from the lock, and the machine facts (caches, checksums, cores) they share; it imports only itself."""
