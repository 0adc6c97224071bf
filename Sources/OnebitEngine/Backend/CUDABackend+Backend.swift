import OnebitCUDA

extension CUDABackend: Backend {}
