// Bring your own io_context (docs/customise.md, "Bring your own io_context").
//
// StatusServer stands for a third-party library written against a plain io_context&, made
// before any loop exists (Quart's `app.run(loop=loop)` case). The program hands that
// io_context to a BackgroundLoop: the loop's thread serves the library and runs the
// program's tasks. stop() settles every loopbridge handle and joins the thread, but leaves
// the io_context, and the library's listening socket in it, to its owner, who runs it again
// on a thread of its own. curl checks who answered each time.

#include <loopbridge/loopbridge.hpp>

#include "common/processes.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <pthread.h>

#include <iostream>
#include <memory>
#include <string>
#include <thread>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

using examples::this_thread_name;

// ---- The third party: Boost.Beast, callbacks, a plain io_context& ----

class StatusServer {
public:
  explicit StatusServer(asio::io_context& io) : acceptor_(io, {asio::ip::address_v4::loopback(), 0}) { accept(); }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int requests() const { return requests_; }
  void close() { acceptor_.close(); }

private:
  struct Exchange {
    explicit Exchange(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code error, tcp::socket socket) {
      if (error) return;  // closed
      serve(std::make_shared<Exchange>(std::move(socket)));
      accept();
    });
  }

  void serve(std::shared_ptr<Exchange> exchange) {
    http::async_read(exchange->socket, exchange->buffer, exchange->request,
                     [this, exchange](boost::system::error_code error, std::size_t) {
                       if (error) return;
                       ++requests_;
                       auto& response = exchange->response;
                       response = {http::status::ok, exchange->request.version()};
                       response.set(http::field::content_type, "text/plain");
                       response.body() = "served by " + this_thread_name() + "\n";
                       response.keep_alive(false);
                       response.prepare_payload();
                       http::async_write(exchange->socket, response, [exchange](boost::system::error_code, std::size_t) {
                         boost::system::error_code ignored;
                         exchange->socket.shutdown(tcp::socket::shutdown_send, ignored);
                       });
                     });
  }

  tcp::acceptor acceptor_;
  int requests_ = 0;
};

std::string curl(unsigned short port) {
  return examples::run_client("curl --silent --show-error --max-time 10 http://127.0.0.1:" + std::to_string(port) + "/");
}

}  // namespace

int main() {
  asio::io_context io;     // the program's, made first
  StatusServer server(io);  // the third party, made against it before any loop exists

  std::string loop_reply;
  bool refresh_cancelled = false;
  {
    loopbridge::BackgroundLoop loop(io, {.name = "app-loop"});
    loop.start();  // the loop's thread runs io: the server answers there
    loop_reply = curl(server.port());
    std::cout << "while the loop runs io: " << loop_reply;

    // The program's own work on the same thread: a refresh that waits for an hour.
    auto refresh = loop.submit([]() -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
      co_await timer.async_wait(asio::use_awaitable);
    });
    auto requests = loop.submit([&] { return server.requests(); });  // read on the loop thread
    std::cout << "requests served so far: " << requests.get() << "\n";

    loopbridge::ShutdownReport report = loop.stop();  // every handle settled, thread joined
    std::cout << report.summary() << "\n";
    try {
      refresh.get();
    } catch (const loopbridge::TaskCancelled&) {
      refresh_cancelled = true;
      std::cout << "the hour-long refresh was cancelled by the stop\n";
    }
  }

  // io is the owner's again: stopped, alive, the server's socket still listening in it.
  io.restart();
  std::thread owner([&] {
    ::pthread_setname_np(::pthread_self(), "owner");
    io.run();  // returns once the server has closed and nothing is left to do
  });
  const std::string owner_reply = curl(server.port());
  std::cout << "after the loop stopped, on the owner's thread: " << owner_reply;
  asio::post(io, [&] { server.close(); });
  owner.join();

  const bool ok = loop_reply == "served by app-loop\n" && owner_reply == "served by owner\n" && refresh_cancelled &&
                  server.requests() == 2;
  if (!ok) std::cerr << "borrowed_io_context: an answer was not the expected one\n";
  return ok ? 0 : 1;
}
