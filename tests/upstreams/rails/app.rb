# A small Rails application, as the framework documents it, for the end-to-end tests.
#
# One file with Rails' own middleware stack (Rack::MethodOverride included: a `_method`
# field of a form body turns a POST into another method) and routes drawn the usual way,
# each with Rails' implicit `(.:format)` suffix. `request.host` comes from
# X-Forwarded-Host, as Rack reads it. Served by WEBrick through Rack.
#
# Usage: ruby app.rb PORT LOG_FILE. Every request a controller serves is appended to
# LOG_FILE as a JSON line: the test's x-test-id, the resource that served it, the method,
# the host the app saw and the identity headers it received.
require "json"
require "logger"
require "action_controller/railtie"
require "rack/handler/webrick"

PORT = Integer(ARGV[0])
LOG = ARGV[1] || "/dev/null"

class TestApp < Rails::Application
  config.eager_load = false
  config.secret_key_base = "test-only"
  config.hosts.clear
  config.logger = Logger.new(nil)
  config.consider_all_requests_local = false
end

class ServeController < ActionController::Base
  def show
    resource = request.host == "admin.example.com" ? "admin-host" : params[:resource]
    identity = request.headers.env.select { |k, _| k.start_with?("HTTP_X_AUTH_") }
                      .transform_keys { |k| k.delete_prefix("HTTP_").downcase.tr("_", "-") }
    record = {
      test_id: request.headers["X-Test-Id"] || "",
      resource: resource,
      method: request.request_method,
      host: request.host,
      identity: identity,
      authorization: request.headers["Authorization"],
    }
    File.open(LOG, "a") { |f| f.puts(JSON.generate(record)) }
    render json: record
  end
end

TestApp.initialize!
TestApp.routes.draw do
  constraints(host: "admin.example.com") do
    match "*rest", to: "serve#show", via: :all, defaults: { resource: "admin-host" }, format: false
    root to: "serve#show", via: :all, defaults: { resource: "admin-host" }
  end
  match "admin", to: "serve#show", via: :all, defaults: { resource: "admin" }
  match "admin/*rest", to: "serve#show", via: :all, defaults: { resource: "admin" }
  match "public", to: "serve#show", via: :all, defaults: { resource: "public" }
  match "public/*rest", to: "serve#show", via: :all, defaults: { resource: "public" }
  get "api/orders/export", to: "serve#show", defaults: { resource: "orders-export" }
  get "api/orders/:id/history", to: "serve#show", defaults: { resource: "orders-history" }
  get "api/orders/:id", to: "serve#show", defaults: { resource: "order" }
  delete "api/orders/:id", to: "serve#show", defaults: { resource: "order-deleted" }
  get "api/orders", to: "serve#show", defaults: { resource: "orders-list" }
  post "api/orders", to: "serve#show", defaults: { resource: "order-created" }
end

$stdout.puts "ready"
$stdout.flush
Rack::Handler::WEBrick.run(TestApp, Host: "127.0.0.1", Port: PORT,
                           Logger: WEBrick::Log.new(nil, 0), AccessLog: [])
