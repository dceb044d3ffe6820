<?php
// A small Laravel application (Illuminate routing and HTTP, Debian's php-laravel-framework
// 8), as the framework documents it, for the end-to-end tests. Run by PHP's built-in
// server as its router script: `php -S 127.0.0.1:PORT laravel.php`, with
// PORTCULLIS_TEST_LOG naming the log.
//
// Laravel's `Request::capture()` enables the `_method` override, and reads it from the
// request's input: the query, a form body, and a JSON body alike. Its router ignores a
// trailing slash. The TrustProxies middleware of a real application is
// `Request::setTrustedProxies` with the X-Forwarded-* headers.
//
// Every request a route serves is appended to the log as a JSON line: the test's
// x-test-id, the resource, the method, the host the app saw and the identity headers.
require_once 'Illuminate/Routing/autoload.php';
require_once 'Illuminate/Http/autoload.php';
require_once 'Illuminate/Events/autoload.php';
require_once 'Illuminate/Container/autoload.php';

use Illuminate\Container\Container;
use Illuminate\Events\Dispatcher;
use Illuminate\Http\JsonResponse;
use Illuminate\Http\Request;
use Illuminate\Routing\Router;
use Symfony\Component\HttpKernel\Exception\HttpExceptionInterface;

Request::setTrustedProxies(['127.0.0.1'], Request::HEADER_X_FORWARDED_FOR | Request::HEADER_X_FORWARDED_HOST
    | Request::HEADER_X_FORWARDED_PORT | Request::HEADER_X_FORWARDED_PROTO);
$request = Request::capture();

$serve = function (string $resource) {
    return function (Request $request) use ($resource) {
        $identity = [];
        foreach ($request->headers->all() as $name => $values) {
            if (str_starts_with($name, 'x-auth-')) {
                $identity[$name] = implode(',', $values);
            }
        }
        $record = [
            'test_id' => $request->headers->get('x-test-id', ''),
            'resource' => $resource,
            'method' => $request->getMethod(),
            'host' => $request->getHost(),
            'identity' => (object) $identity,
            'authorization' => $request->headers->get('authorization'),
        ];
        file_put_contents(getenv('PORTCULLIS_TEST_LOG') ?: '/dev/null', json_encode($record) . "\n",
            FILE_APPEND | LOCK_EX);
        return new JsonResponse($record);
    };
};

$container = new Container();
$container->instance(Request::class, $request);
$container->instance('request', $request);
$router = new Router(new Dispatcher($container), $container);
$router->domain('admin.example.com')->group(function (Router $router) use ($serve) {
    $router->any('/{rest?}', $serve('admin-host'))->where('rest', '.*');
});
$router->any('/admin/{rest?}', $serve('admin'))->where('rest', '.*');
$router->any('/public/{rest?}', $serve('public'))->where('rest', '.*');
$router->get('/api/orders/export', $serve('orders-export'));
$router->get('/api/orders/{id}/history', $serve('orders-history'));
$router->get('/api/orders/{id}', $serve('order'));
$router->delete('/api/orders/{id}', $serve('order-deleted'));
$router->get('/api/orders', $serve('orders-list'));
$router->post('/api/orders', $serve('order-created'));

try {
    $response = $router->dispatch($request);
} catch (HttpExceptionInterface $e) {
    $response = new JsonResponse(['resource' => null], $e->getStatusCode());
}
$response->send();
return true;
