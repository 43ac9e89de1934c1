#pragma once

// What every entry point that takes user code accepts (submit, post, run, to_thread,
// call_host, on_settled, and the LoopPool and BackgroundLoop forms of them), written once:
// the traits that tell what a callable runs, how its arguments are bound, and the one
// sentence a compiler prints when a call breaks the rule.
//
// Each entry point computes a Misuse from its argument types and, when it is not `none`,
// instantiates refuse<Entry, Misuse>() (whose static_assert is the message) instead of the
// code that would call the callable: the message is the first error, not the last line of
// an invoke_result cascade.

#include <loopbridge/loop/errors.hpp>
#include <loopbridge/loop/options.hpp>
#include <loopbridge/loop/source_location.hpp>
#include <loopbridge/loop/stop_token.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace loopbridge::detail {

// ---- What a callable runs ----

template <class T>
struct is_awaitable : std::false_type {};
template <class T, class Executor>
struct is_awaitable<boost::asio::awaitable<T, Executor>> : std::true_type {};

template <class T>
struct awaitable_value;
template <class T, class Executor>
struct awaitable_value<boost::asio::awaitable<T, Executor>> {
  using type = T;
  using executor = Executor;
};

/// What a submitted F runs: a coroutine function (returns awaitable<T>), a plain callable
/// (returns T), or an awaitable<T> object itself.
template <class F>
struct task_traits {
  using invoke_result = std::invoke_result_t<F&>;
  static constexpr bool coroutine = is_awaitable<invoke_result>::value;
  using result = typename std::conditional_t<coroutine, awaitable_value<invoke_result>,
                                             std::type_identity<invoke_result>>::type;
};

/// Lets an awaitable<T> object be submitted like a coroutine function.
template <class Awaitable>
class AwaitableFunction {
public:
  explicit AwaitableFunction(Awaitable a) : awaitable_(std::move(a)) {}
  Awaitable operator()() { return std::move(awaitable_); }

private:
  Awaitable awaitable_;
};

/// A callable and the arguments given with it, both stored by value (decay-copied, as
/// std::thread does). The call passes the arguments as rvalues, after whatever the caller
/// puts first (the std::stop_token of a handed-off function). It lives in the task until
/// the task ends, so a coroutine function's reference parameters refer to it, never to the
/// caller's temporaries.
template <class F, class... Args>
class BoundCall {
public:
  template <class G, class... As>
  explicit BoundCall(G&& fn, As&&... args) : fn_(std::forward<G>(fn)), args_(std::forward<As>(args)...) {}

  template <class... Lead>
    requires std::invocable<F&, Lead..., Args...>
  std::invoke_result_t<F&, Lead..., Args...> operator()(Lead&&... lead) {
    return std::apply([&](Args&... args) { return std::invoke(fn_, std::forward<Lead>(lead)..., std::move(args)...); },
                      args_);
  }

private:
  F fn_;
  std::tuple<Args...> args_;
};

/// The stored form of a callable F given with Args: F itself (decayed) when no arguments
/// come with it, an AwaitableFunction for an awaitable object, a BoundCall otherwise.
/// Constructed from the callable followed by the arguments.
template <class F, class... Args>
using function_type_for =
    std::conditional_t<(sizeof...(Args) > 0), BoundCall<std::decay_t<F>, std::decay_t<Args>...>,
                       std::conditional_t<is_awaitable<std::decay_t<F>>::value, AwaitableFunction<std::decay_t<F>>,
                                          std::decay_t<F>>>;

#if LOOPBRIDGE_HAS_STOP_TOKEN
using StopToken = std::stop_token;
template <class F>
constexpr bool takes_stop_token = std::is_invocable_v<F&, std::stop_token>;
#else
/// Stands for std::stop_token where the standard library has none: nothing is one.
struct StopToken {
  StopToken() = delete;
};
template <class F>
constexpr bool takes_stop_token = false;
#endif

/// What a handed-off F returns (given a std::stop_token if it takes one).
template <class F>
using handoff_result_t =
    typename std::conditional_t<takes_stop_token<F>, std::invoke_result<F&, StopToken>, std::invoke_result<F&>>::type;

/// Refuses null function pointers and empty function wrappers (std::function and the like:
/// classes with their own operator bool).
template <class F>
void check_callable(const F& fn) {
  bool empty = false;
  if constexpr (std::is_pointer_v<F> || std::is_member_pointer_v<F>) {
    empty = fn == nullptr;
  } else if constexpr (requires { &F::operator bool; }) {
    empty = !static_cast<bool>(fn);
  }
  if (empty) throw InvalidArgument("an empty callable was submitted");
}

// ---- The values after the callable ----
//
// The entry points that record their call site take a defaulted source_location last. C++
// deduces no parameter pack in front of it, so they take a fixed number of slots after the
// callable instead: the first holds the call's options (defaulted, so that `{.name = "x"}`
// still converts) or the first argument; the others default to NoArg. The stored
// arguments are the values given, in order, without the options.

/// How many values may follow the callable of an entry point that records its call site.
inline constexpr std::size_t max_values_after_callable = 6;

/// A slot after the callable that the caller left empty.
struct NoArg {};

/// The call site of an entry point: its defaulted last parameter. A value passed in its
/// place is one too many after the callable, and says so.
struct CallSite {
  /// Implicit: the entry point's default argument, source_location::current(), converts.
  CallSite(source_location site) noexcept : where(site) {}
  template <class T>
    requires(!std::same_as<std::remove_cvref_t<T>, CallSite> && !std::convertible_to<T, source_location>)
  CallSite(T&&) {
    static_assert(sizeof(T) == 0,
                  "loopbridge: at most 6 values may follow the callable (its options, then its arguments); wrap a "
                  "longer call in a lambda");
  }

  source_location where;
};

template <class... Ts>
struct TypeList {};

/// True when a value of type T in the first slot is the entry point's Options (a bare
/// std::stop_token stands for SubmitOptions{.stop = token}).
template <class Options, class T>
inline constexpr bool fills_options =
    std::is_same_v<std::remove_cvref_t<T>, Options> ||
    (std::is_same_v<Options, SubmitOptions> && std::is_same_v<std::remove_cvref_t<T>, StopToken>);

template <class T>
inline constexpr bool is_no_arg = std::is_same_v<std::remove_cvref_t<T>, NoArg>;

/// Kept, followed by the types among Rest that are not NoArg.
template <class Kept, class... Rest>
struct drop_no_args {
  using type = Kept;
};
template <class... Kept, class Next, class... More>
struct drop_no_args<TypeList<Kept...>, Next, More...>
    : drop_no_args<std::conditional_t<is_no_arg<Next>, TypeList<Kept...>, TypeList<Kept..., Next>>, More...> {};

/// The arguments among an entry point's slots: the slot types without the options and the
/// empty slots.
template <class Options, class First, class... Rest>
struct slot_arguments
    : drop_no_args<std::conditional_t<fills_options<Options, First>, TypeList<>, TypeList<First>>, Rest...> {};

template <class Options, class... Slots>
using slot_arguments_t = typename slot_arguments<Options, Slots...>::type;

/// True when the first of Ts is T (a ToThreadOptions in front of to_thread()'s arguments).
template <class T, class... Ts>
inline constexpr bool leads_with = false;
template <class T, class First, class... Rest>
inline constexpr bool leads_with<T, First, Rest...> = std::is_same_v<std::remove_cvref_t<First>, T>;

template <class Options, class T>
Options to_options(T&& value) {
  if constexpr (std::is_same_v<std::remove_cvref_t<T>, StopToken>) {
    Options options;
    options.stop = std::forward<T>(value);
    return options;
  } else {
    return std::forward<T>(value);
  }
}

/// Calls `then(options, args...)` with what an entry point's slots hold: the options in the
/// first slot (Options{} when it holds an argument), then the arguments, forwarded.
template <class Options, class Then, class First, class... Rest>
decltype(auto) with_slots(Then&& then, First&& first, Rest&&... rest) {
  constexpr std::size_t given = (std::size_t{0} + ... + (is_no_arg<Rest> ? 0 : 1));
  auto others = std::forward_as_tuple(std::forward<Rest>(rest)...);
  return [&]<std::size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
    if constexpr (fills_options<Options, First>) {
      return std::forward<Then>(then)(to_options<Options>(std::forward<First>(first)), std::get<I>(std::move(others))...);
    } else {
      return std::forward<Then>(then)(Options{}, std::forward<First>(first), std::get<I>(std::move(others))...);
    }
  }(std::make_index_sequence<given>{});
}

// ---- The rules ----

/// Why an entry point refuses what it was given; `none` when it accepts it.
enum class Misuse : std::uint8_t {
  none,
  not_callable,
  awaitable_with_arguments,
  not_storable,
  returns_reference,
  foreign_executor,
  returns_value,
  coroutine_handed_off,
  bad_time_limit,
};

/// The entry points, as their messages name them.
enum class Entry : std::uint8_t { submit, post, run, to_thread, call_host, on_settled };

template <class Awaitable>
constexpr Misuse executor_misuse() {
  return std::is_same_v<typename awaitable_value<Awaitable>::executor, boost::asio::any_io_executor>
             ? Misuse::none
             : Misuse::foreign_executor;
}

template <class F, class... Args>
inline constexpr bool storable =
    std::constructible_from<std::decay_t<F>, F> && (std::constructible_from<std::decay_t<Args>, Args> && ...);

/// submit() and run(): a callable that accepts Args (decay-copied, passed as rvalues) and
/// returns a value or an awaitable<T>, or an awaitable<T> object given alone.
template <class F, class... Args>
constexpr Misuse task_misuse() {
  using Fn = std::decay_t<F>;
  if constexpr (is_awaitable<Fn>::value) {
    if constexpr (sizeof...(Args) > 0) {
      return Misuse::awaitable_with_arguments;
    } else if constexpr (!storable<F>) {
      return Misuse::not_storable;
    } else {
      return executor_misuse<Fn>();
    }
  } else if constexpr (!std::invocable<Fn&, std::decay_t<Args>...>) {
    return Misuse::not_callable;
  } else if constexpr (!storable<F, Args...>) {
    return Misuse::not_storable;
  } else {
    using Result = std::invoke_result_t<Fn&, std::decay_t<Args>...>;
    if constexpr (std::is_reference_v<Result>) {
      return Misuse::returns_reference;
    } else if constexpr (is_awaitable<Result>::value) {
      return executor_misuse<Result>();
    } else {
      return Misuse::none;
    }
  }
}

template <class F, class... Args>
constexpr Misuse task_misuse_for(TypeList<Args...>) {
  return task_misuse<F, Args...>();
}

/// post(): as submit(), for work whose result nobody receives: it returns void (or
/// awaitable<void>).
template <class F, class... Args>
constexpr Misuse post_misuse_for(TypeList<Args...> arguments) {
  constexpr Misuse misuse = task_misuse_for<F>(arguments);
  if constexpr (misuse != Misuse::none) {
    return misuse;
  } else {
    using Result = typename task_traits<function_type_for<F, Args...>>::result;
    return std::is_void_v<Result> ? Misuse::none : Misuse::returns_value;
  }
}

/// to_thread() and call_host(): a plain function that accepts Args, after a std::stop_token
/// if it takes one first (as std::jthread passes it), and returns a value.
template <class F, class... Args>
constexpr Misuse handoff_misuse() {
  using Fn = std::decay_t<F>;
  if constexpr (!(LOOPBRIDGE_HAS_STOP_TOKEN && std::invocable<Fn&, StopToken, std::decay_t<Args>...>) &&
                !std::invocable<Fn&, std::decay_t<Args>...>) {
    return Misuse::not_callable;
  } else if constexpr (!storable<F, Args...>) {
    return Misuse::not_storable;
  } else {
    using Result = handoff_result_t<function_type_for<F, Args...>>;
    if constexpr (std::is_reference_v<Result>) {
      return Misuse::returns_reference;
    } else if constexpr (is_awaitable<Result>::value) {
      return Misuse::coroutine_handed_off;
    } else {
      return Misuse::none;
    }
  }
}

/// on_settled(): a callable that takes the settled handle.
template <class Fn, class Handle>
constexpr Misuse settled_callback_misuse() {
  if constexpr (!std::invocable<std::decay_t<Fn>, Handle>) {
    return Misuse::not_callable;
  } else if constexpr (!storable<Fn>) {
    return Misuse::not_storable;
  } else {
    return Misuse::none;
  }
}

/// run(): its time limit is a duration or a steady_clock deadline.
template <class Limit>
inline constexpr bool is_time_limit = false;
template <class Rep, class Period>
inline constexpr bool is_time_limit<std::chrono::duration<Rep, Period>> = true;
template <class Duration>
inline constexpr bool is_time_limit<std::chrono::time_point<std::chrono::steady_clock, Duration>> = true;

/// Stands for the result of a refused call, so that the caller's code meets no second error
/// (it converts to whatever the caller expected; the program never links).
struct Refused {
  template <class T>
  operator T() const;
};

/// Refused, named through `Call` so that a template that names a type built on it (a refused
/// submit()'s TaskHandle) instantiates that type only when a call is refused.
template <class Call>
using refused_for = std::enable_if_t<sizeof(Call*) != 0, Refused>;

/// Fails to compile with the sentence that states `entry`'s rule broken as `misuse` says.
template <Entry entry, Misuse misuse>
void refuse() {
  static_assert(!(entry == Entry::submit && misuse == Misuse::not_callable),
                "loopbridge: submit(fn, args...) takes a callable fn that accepts args (none, if none are given), or "
                "a boost::asio::awaitable<T>; to hand over a value, wrap it in a lambda: submit([v] { return v; })");
  static_assert(!(entry == Entry::post && misuse == Misuse::not_callable),
                "loopbridge: post(fn, args...) takes a callable fn that accepts args (none, if none are given), or a "
                "boost::asio::awaitable<void>; wrap anything else in a lambda: post([v] { use(v); })");
  static_assert(!(entry == Entry::run && misuse == Misuse::not_callable),
                "loopbridge: run(loop, fn, limit, args...) takes a callable fn that accepts args (none, if none are "
                "given), or a boost::asio::awaitable<T>; to hand over a value, wrap it in a lambda: "
                "run(loop, [v] { return v; }, 1s)");
  static_assert(!(entry == Entry::to_thread && misuse == Misuse::not_callable),
                "loopbridge: to_thread(fn, args...) takes a function fn that accepts args (none, if none are given), "
                "optionally after a std::stop_token as std::jthread passes one; wrap anything else in a lambda");
  static_assert(!(entry == Entry::call_host && misuse == Misuse::not_callable),
                "loopbridge: call_host(fn, args...) takes a function fn that accepts args (none, if none are given), "
                "optionally after a std::stop_token as std::jthread passes one; wrap anything else in a lambda");
  static_assert(!(entry == Entry::on_settled && misuse == Misuse::not_callable),
                "loopbridge: on_settled(fn) takes a callable fn that accepts the settled TaskHandle<T> (by value or "
                "as TaskHandle<T>&&) and reads its outcome with result()");
  static_assert(misuse != Misuse::returns_value,
                "loopbridge: post() drops what its work returns, so it takes only work that returns void (or "
                "awaitable<void>): use submit() to get the value, or drop it yourself in a lambda");
  static_assert(misuse != Misuse::awaitable_with_arguments,
                "loopbridge: an awaitable object runs as it is and takes no arguments; pass the coroutine function "
                "and its arguments instead: submit(fn, args...)");
  static_assert(misuse != Misuse::not_storable,
                "loopbridge stores the callable and its arguments by value (decay-copied, as std::thread does): pass "
                "a move-only one with std::move, and a reference with std::ref");
  static_assert(misuse != Misuse::returns_reference,
                "loopbridge stores what the callable returns, so it must return a value, not a reference: return a "
                "copy, or a pointer");
  static_assert(misuse != Misuse::foreign_executor,
                "loopbridge runs boost::asio::awaitable<T> coroutines on the default executor (any_io_executor), not "
                "awaitable<T, Executor> of another executor");
  static_assert(misuse != Misuse::coroutine_handed_off,
                "loopbridge: to_thread() and call_host() run a plain blocking function on another thread, not a "
                "coroutine function: co_await the coroutine on the loop, or submit() it");
  static_assert(misuse != Misuse::bad_time_limit,
                "loopbridge: run(loop, fn, limit, args...) takes as limit a timeout (a std::chrono::duration) or a "
                "deadline (a std::chrono::steady_clock::time_point)");
}

}  // namespace loopbridge::detail
