#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

namespace loopbridge::detail {

/// Base of the objects shared between host threads and a loop thread: an intrusive,
/// thread-safe reference count, so a task needs one allocation for its state, its command
/// nodes and its callable together.
class RefCounted {
public:
  /// Starts with `initial` references, all owned by the creator.
  explicit RefCounted(std::uint32_t initial = 1) noexcept : refs_(initial) {}
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Takes a reference unless the object is already being destroyed.
  bool try_add_ref() noexcept {
    std::uint32_t refs = refs_.load(std::memory_order_relaxed);
    while (refs != 0) {
      if (refs_.compare_exchange_weak(refs, refs + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  /// Returns whether that was the last reference (the object is gone).
  bool release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
    delete this;
    return true;
  }

protected:
  virtual ~RefCounted() = default;

private:
  std::atomic<std::uint32_t> refs_;
};

/// An owning pointer to a RefCounted object.
template <class T>
class Ref {
public:
  Ref() noexcept = default;
  /// Adopts a reference the caller already owns.
  static Ref adopt(T* p) noexcept {
    Ref r;
    r.p_ = p;
    return r;
  }
  /// Takes a new reference.
  static Ref share(T* p) noexcept {
    if (p) p->add_ref();
    return adopt(p);
  }

  Ref(const Ref& other) noexcept : p_(other.p_) {
    if (p_) p_->add_ref();
  }
  Ref(Ref&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  template <class U>
  Ref(Ref<U>&& other) noexcept : p_(other.detach()) {}
  template <class U>
  Ref(const Ref<U>& other) noexcept : p_(other.get()) {
    if (p_) p_->add_ref();
  }
  Ref& operator=(Ref other) noexcept {
    std::swap(p_, other.p_);
    return *this;
  }
  ~Ref() {
    if (p_) p_->release();
  }

  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  /// Gives up ownership without releasing.
  T* detach() noexcept { return std::exchange(p_, nullptr); }

private:
  T* p_ = nullptr;
};

}  // namespace loopbridge::detail
